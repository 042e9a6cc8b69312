import { StringDecoder } from 'node:string_decoder';
import { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { EnvironmentSpec, ExitStatus, RuntimeProvider, TerminalAttachment, TerminalSize } from '../../runtime/runtime.provider.js';
import type { SequencedInput } from '../input/input-writer.js';
import type { UpstreamHints } from '../low-latency.js';
import type { SessionUpstream, UpstreamHistory } from '../terminal-session.js';
import { InputMessage, InputStream } from './input-stream.js';
import { ClusterInput, TakenHints } from './owner-input.js';
import {
  exitId,
  historyOf,
  minId,
  outputId,
  parseEntry,
  RawEntry,
  readAfter,
  readEnds,
  readSnapshot,
  skipTo,
  StreamEntry,
  StreamSnapshot,
} from './stream-entries.js';
import { TerminalKeys, TerminalScripts } from './terminal-scripts.js';

export interface ClusterTiming {
  /** The lease's TTL: how long a dead owner keeps its environment's terminal before another replica takes it. */
  leaseMs: number;
  /** How often the owner renews its lease, and a replica with clients tries to take a vacant one. */
  renewMs: number;
  /** How long one XREAD blocks. */
  blockMs: number;
  /** How long the output stream and its metadata outlive their last write. */
  keepMs: number;
  /** How long input waits in its stream for an owner. */
  inputKeepMs: number;
  /** How long a replica that is not the owner keeps its clients while Redis cannot be read. */
  outageGraceMs: number;
  /** How long a replica that is not the owner waits for a new owner's first words (its session name). */
  ownerWaitMs: number;
}

export interface ClusterParts {
  /** The shared command connection (keys prefixed). */
  redis: Redis;
  scripts: TerminalScripts;
  keyPrefix: string;
  /** A connected connection of its own for blocking reads (no key prefix). */
  connect(name: string): Promise<Redis>;
  runtime: RuntimeProvider;
  replica: string;
  /** Told when this upstream starts owning the terminal (`took over`: from a predecessor) and when it stops. */
  owning(owns: boolean, tookOver?: boolean): void;
  replayBufferBytes: number;
  timing: ClusterTiming;
  /** Counts resent input the owner dropped (written already). */
  duplicateInput?: () => void;
}

type Role = 'follower' | 'taking' | 'owner' | 'ended';

const READ_COUNT = 512;
const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * One environment's terminal upstream in a replica that shares it through Redis (docs/terminal.md,
 * "Several replicas"). To its TerminalSession it is an upstream like the runtime's (a Duplex of
 * keystrokes in, screen out), in one of two roles:
 *
 * - **owner** (holds the environment's lease): runs the one tmux client of the environment, writes
 *   its output to the output stream under the fence (each write checks the lease atomically) as well
 *   as to its session, and applies what the other replicas put in the input stream;
 * - **follower**: reads the output stream into its session, and puts its clients' input, resizes and
 *   redraw requests in the input stream.
 *
 * A follower whose session has clients takes a vacant lease (its owner died or left): it reads
 * what remains of the stream, then attaches a new tmux client to the same tmux session and goes on
 * from the stream's end offset. An owner that loses its lease (fenced) ends, and its clients
 * reconnect. Offsets are the stream's, so every replica's session holds the same bytes at the same
 * offsets and a client resumes exactly anywhere the bytes are still held. A follower that finds
 * bytes missing (trimmed while it was not reading, never written during a Redis outage) goes on
 * after them and tells its session, which starts its buffer again there and redraws its clients.
 */
export class ClusterUpstream implements SessionUpstream {
  private readonly logger = new Logger('TerminalCluster');
  readonly stream: Duplex;
  readonly exit: Promise<ExitStatus>;
  readonly keys: TerminalKeys;
  private readonly input: InputStream;
  sessionName = '';
  history: UpstreamHistory | undefined;
  private resolveExit: (status: ExitStatus) => void = () => undefined;
  private role: Role = 'follower';
  private lease: string | null = null;
  /** Offset after the last byte handed to the session (and, as owner, written to the stream). */
  private end = 0;
  /** The last output-stream entry read. */
  private lastId = '0-0';
  private reader: Redis | null = null;
  private attachment: TerminalAttachment | null = null;
  private decoder = new StringDecoder('utf8');
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** The lease was seen vacant at the last tick (a follower takes it at the second sighting). */
  private vacantSeen = false;
  private reclaiming: Promise<void> | null = null;
  private readWanted: (() => void) | null = null;
  private cleanup: Promise<void> | null = null;
  private owning = false;
  private tookOver = false;
  /** Sequenced input and mode hints, as owner or follower (owner-input.ts). */
  private readonly sequenced: ClusterInput;
  /** The session's listener for skips over missed bytes (SessionUpstream.onResync). */
  private resynced: ((offset: number) => void) | null = null;

  private constructor(
    private readonly spec: EnvironmentSpec,
    private readonly parts: ClusterParts,
    private size: TerminalSize,
    /** True while this replica's session has clients: only then does it take over a vacant lease. */
    private readonly wanted: () => boolean,
  ) {
    this.keys = new TerminalKeys(spec.id);
    this.input = new InputStream(parts.redis, parts.keyPrefix, this.keys, parts.timing);
    this.sequenced = new ClusterInput({
      end: () => this.end,
      writeAlone: (id, taken) => this.writeHints(id, taken),
      duplicate: parts.duplicateInput,
    });
    this.exit = new Promise((resolve) => (this.resolveExit = resolve));
    this.stream = new Duplex({
      read: () => this.onRead(),
      write: (chunk: Buffer, _encoding, callback) => {
        this.write(chunk);
        callback();
      },
    });
  }

  /** Joins the environment's terminal: as its owner when nobody holds the lease, else as a follower. */
  static async open(spec: EnvironmentSpec, size: TerminalSize, parts: ClusterParts, wanted: () => boolean): Promise<ClusterUpstream> {
    const upstream = new ClusterUpstream(spec, parts, size, wanted);
    try {
      await upstream.start();
    } catch (error) {
      await upstream.kill();
      throw error;
    }
    return upstream;
  }

  private async start(): Promise<void> {
    const { scripts, replica, timing } = this.parts;
    const deadline = Date.now() + timing.ownerWaitMs;
    for (;;) {
      const lease = await scripts.acquire(this.keys, replica, timing.leaseMs);
      if (lease) {
        await this.ownFresh(lease);
        break;
      }
      // Held: follow, once the owner has said which session it attached to (it may be attaching right now).
      if (await this.follow()) break;
      if (Date.now() > deadline) throw new Error('the replica holding this terminal does not answer');
      await delay(100);
    }
    this.timer = setInterval(() => void this.tick(), timing.renewMs);
  }

  // ---- the stream's state -------------------------------------------------------------------------------

  /** The stream's history as this upstream's starting point: where it reads on from, and its session's first bytes. */
  private startFrom(snapshot: StreamSnapshot): UpstreamHistory {
    const { history, lastId } = historyOf(snapshot);
    this.lastId = lastId;
    this.end = history.base + history.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    return history;
  }

  // ---- follower ---------------------------------------------------------------------------------------

  /** Starts following: false when the owner has not written its session's name yet. */
  private async follow(): Promise<boolean> {
    const snapshot = await readSnapshot(this.parts.redis, this.keys, '0-0');
    if (snapshot.name === null) return false;
    this.sessionName = snapshot.name;
    this.history = this.startFrom(snapshot);
    this.sequenced.joined(await this.parts.redis.hget(this.keys.meta, 'modes'));
    this.reader = await this.parts.connect('terminal-follow');
    void this.readOutput(this.reader);
    return true;
  }

  private async readOutput(reader: Redis): Promise<void> {
    const { timing, keyPrefix } = this.parts;
    const key = keyPrefix + this.keys.output;
    let failingSince: number | null = null;
    let paused = false;
    while (this.role === 'follower' && this.reader === reader) {
      let entries: RawEntry[];
      try {
        if (paused) {
          // Back from a pause (every client here was behind): when the stream no longer holds what
          // follows, its backlog would only be drawn over, so this replica goes on from its newest entry.
          const { first, last } = await readEnds(reader, key);
          if (this.role !== 'follower' || this.reader !== reader) return;
          const skip = skipTo(this.end, first, last);
          if (skip) {
            this.lastId = skip.lastId;
            this.resync(skip.end, 'it was trimmed while every client here was behind');
          }
          paused = false;
        }
        entries = await readAfter(reader, key, this.lastId, timing.blockMs, READ_COUNT);
        failingSince = null;
      } catch (error) {
        if (this.role !== 'follower' || this.reader !== reader) return;
        failingSince ??= Date.now();
        if (Date.now() - failingSince > timing.outageGraceMs) {
          this.logger.warn(`The terminal stream of ${this.spec.id} cannot be read (${errorText(error)}); its clients reconnect`);
          void this.finish({ code: null, signal: 'shared state unavailable' });
          return;
        }
        await delay(200);
        continue;
      }
      for (const raw of entries) if (!this.deliver(raw)) return;
      if (this.stream.readableLength >= this.stream.readableHighWaterMark) {
        await new Promise<void>((resolve) => (this.readWanted = resolve));
        paused = true;
      }
    }
  }

  /** Hands one entry of the stream to the session; false when the session ends with it. */
  private deliver(raw: RawEntry): boolean {
    const entry: StreamEntry | null = parseEntry(raw);
    this.lastId = raw[0];
    if (entry === null) {
      this.sequenced.tell(raw[1], this.end);
      return true;
    }
    if (entry.kind === 'exit') {
      void this.finish({ code: entry.code, signal: null });
      return false;
    }
    if (entry.start !== this.end) this.resync(entry.start, 'trimmed before this replica read them, or never written');
    this.sequenced.tell(raw[1], entry.start);
    const bytes = Buffer.from(entry.data, 'utf8');
    this.end += bytes.length;
    this.stream.push(bytes);
    return true;
  }

  /**
   * The stream goes on at `offset` without the bytes from `this.end` (gone for this replica). What
   * was read before them reaches the session first; then the session starts again at `offset` and
   * redraws its clients (a `reset` each, and a repaint through the owner). Before the session
   * listens, its starting point simply moves there.
   */
  private resync(offset: number, why: string): void {
    this.logger.log(
      `The terminal stream of ${this.spec.id} went on at ${offset} without the bytes from ${this.end} (${why}); its clients are redrawn`,
    );
    while (this.stream.readableLength > 0 && this.stream.read() !== null);
    this.end = offset;
    if (this.resynced) this.resynced(offset);
    else this.history = { base: offset, chunks: [] };
  }

  onResync(listener: (offset: number) => void): void {
    this.resynced = listener;
  }

  private onRead(): void {
    if (this.role === 'owner') this.attachment?.stream.resume();
    const wanted = this.readWanted;
    this.readWanted = null;
    wanted?.();
  }

  // ---- owner ------------------------------------------------------------------------------------------

  private async tick(): Promise<void> {
    if (this.ticking || this.role === 'ended' || this.role === 'taking') return;
    this.ticking = true;
    const { scripts, redis, replica, timing } = this.parts;
    try {
      if (this.role === 'owner' && this.lease) {
        const lease = this.lease;
        if (!(await scripts.renew(this.keys, lease, timing.leaseMs))) await this.leaseLost(lease);
      } else if (this.role === 'follower' && this.wanted()) {
        // Taken at the second sighting of a vacant lease (a second later): an owner back from a Redis
        // outage, whose lease expired meanwhile, takes it again first and keeps its clients.
        const vacant = (await redis.exists(this.keys.lease)) === 0;
        if (vacant && this.vacantSeen) {
          const lease = await scripts.acquire(this.keys, replica, timing.leaseMs);
          if (lease) await this.takeOver(lease);
        }
        this.vacantSeen = vacant;
      }
    } catch {
      // Redis unreachable: the owner keeps its tmux client and its own clients; see readOutput for followers.
    } finally {
      this.ticking = false;
    }
  }

  /**
   * A renewal or a write found the lease is no longer `lease`. If nobody holds it (it expired
   * while Redis was away), the owner takes it again with a new epoch and goes on (its own clients
   * notice nothing; the followers find a gap in the stream and redraw); if another replica holds
   * it, this one ends its tmux client and its clients reconnect.
   */
  private leaseLost(lease: string): Promise<void> {
    if (this.role !== 'owner' || this.lease !== lease) return Promise.resolve();
    this.reclaiming ??= (async () => {
      const { scripts, replica, timing } = this.parts;
      const again = await scripts.acquire(this.keys, replica, timing.leaseMs).catch(() => null);
      if (this.role !== 'owner') return;
      if (again) {
        this.logger.warn(`The lease on the terminal of ${this.spec.id} had expired; this replica took it again (${again})`);
        this.lease = again;
      } else {
        this.lose('another replica holds its lease');
      }
    })().finally(() => (this.reclaiming = null));
    return this.reclaiming;
  }

  /** Owner from the start: the stream's history (if an earlier owner left one), then a tmux client. */
  private async ownFresh(lease: string): Promise<void> {
    this.role = 'owner';
    this.lease = lease;
    const snapshot = await readSnapshot(this.parts.redis, this.keys, '0-0');
    this.history = this.startFrom(snapshot);
    await this.attach();
  }

  /** The owner is gone and this follower has clients: it reads what is left, then continues the stream. */
  private async takeOver(lease: string): Promise<void> {
    this.role = 'taking';
    this.lease = lease;
    this.reader?.disconnect();
    this.reader = null;
    this.logger.log(`Taking over the terminal of ${this.spec.id} (lease ${lease})`);
    try {
      const snapshot = await readSnapshot(this.parts.redis, this.keys, this.lastId);
      for (const raw of snapshot.entries) if (!this.deliver(raw)) return;
      if (snapshot.end !== null && snapshot.end > this.end) this.resync(snapshot.end, 'its last entries are gone');
      this.role = 'owner';
      this.tookOver = true;
      await this.attach();
    } catch (error) {
      this.logger.warn(`Could not take over the terminal of ${this.spec.id}: ${errorText(error)}`);
      void this.finish({ code: null, signal: 'takeover failed' });
    }
  }

  /** Attaches this environment's one tmux client and starts writing its output and reading the others' input. */
  private async attach(): Promise<void> {
    const attachment = await this.parts.runtime.attachTerminal(this.spec, this.size);
    if (this.role !== 'owner') {
      await attachment.kill().catch(() => undefined);
      return;
    }
    this.attachment = attachment;
    this.owns(true);
    this.decoder = new StringDecoder('utf8');
    this.sessionName = attachment.sessionName;
    const replies = await this.parts.redis
      .multi()
      .hset(this.keys.meta, 'name', attachment.sessionName, 'end', this.end)
      .pexpire(this.keys.meta, this.parts.timing.keepMs)
      .hgetall(this.keys.seqs)
      .exec();
    this.sequenced.own(attachment, replies?.[2]?.[1], this.lastId);
    attachment.stream.on('data', (chunk: Buffer) => this.publish(chunk));
    attachment.stream.on('error', (error: Error) => this.logger.warn(`Upstream of ${this.spec.id}: ${error.message}`));
    void attachment.exit.then((status) => this.attachmentExited(attachment, status));
    const reader = (this.reader = await this.parts.connect('terminal-own'));
    void this.input.consume(reader, {
      active: () => this.role === 'owner' && this.reader === reader,
      apply: (message) => this.apply(message),
      caughtUp: () => this.sequenced.caughtUp(),
    });
  }

  /** The tmux client's output: to this replica's session and, under the fence, to the stream. */
  private publish(chunk: Buffer): void {
    const lease = this.lease;
    const attachment = this.attachment;
    if (this.role !== 'owner' || !lease || !attachment) return;
    const text = this.decoder.write(chunk);
    if (text.length === 0) return;
    const bytes = Buffer.from(text, 'utf8');
    const start = this.end;
    this.end += bytes.length;
    const entry = {
      id: outputId(start),
      minId: minId(Math.min(start, this.end - this.parts.replayBufferBytes)),
      field: 'd',
      value: text,
      end: this.end,
    };
    const hints = this.sequenced.published(start, bytes);
    void this.parts.scripts.write(this.keys, lease, entry, this.parts.timing.keepMs, hints).then(
      (written) => (written ? undefined : this.leaseLost(lease)),
      // Redis unreachable: this replica's clients keep their terminal; the followers will find a gap.
      () => undefined,
    );
    if (!this.stream.push(bytes)) attachment.stream.pause();
  }

  /** One message of another replica's clients, applied to the tmux client. */
  private apply(message: InputMessage): void {
    switch (message.type) {
      case 'input':
        this.sequenced.apply({
          data: message.data,
          writer: message.writer ?? '~remote',
          seq: message.seq ?? null,
          more: message.more ?? false,
        });
        return;
      case 'resize':
        this.resizeOwned(message.cols, message.rows);
        return;
      case 'repaint':
        this.attachment?.repaint();
        return;
      case 'modes':
        this.sequenced.refresh();
        return;
    }
  }

  private resizeOwned(cols: number, rows: number): void {
    if (cols === this.size.cols && rows === this.size.rows) return;
    this.size = { cols, rows };
    this.attachment?.resize(cols, rows);
  }

  private attachmentExited(attachment: TerminalAttachment, status: ExitStatus): void {
    if (this.attachment !== attachment) return;
    this.attachment = null;
    const lease = this.lease;
    if (status.code === null || !lease || this.role !== 'owner') {
      void this.finish(status);
      return;
    }
    // The session ended (its shell exited): every replica's clients learn it from the stream.
    const marker = {
      id: exitId(this.end),
      minId: minId(this.end - this.parts.replayBufferBytes),
      field: 'x',
      value: String(status.code),
      end: this.end,
    };
    void this.parts.scripts
      .write(this.keys, lease, marker, this.parts.timing.keepMs)
      .catch(() => false)
      .then(() => this.finish(status));
  }

  private lose(why: string): void {
    if (this.role !== 'owner') return;
    this.logger.warn(`This replica no longer owns the terminal of ${this.spec.id} (${why}); its clients reconnect`);
    this.lease = null;
    void this.finish({ code: null, signal: 'lease lost' });
  }

  /** Reports whether this replica runs the environment's tmux client (metrics). */
  private owns(owns: boolean): void {
    if (this.owning === owns) return;
    this.owning = owns;
    this.parts.owning(owns, this.tookOver);
  }

  // ---- low-latency additions (docs/terminal.md) ---------------------------------------------------------

  /** As owner: an entry of acks and modes only (`id` = `<ms>-*`), under the fence like output. */
  private writeHints(id: string, { fields, hints }: TakenHints): void {
    const lease = this.lease;
    const [field, value, ...more] = fields;
    if (this.role !== 'owner' || !lease || field === undefined || value === undefined) return;
    const entry = { id, minId: minId(this.end - this.parts.replayBufferBytes), field, value, end: this.end };
    void this.parts.scripts.write(this.keys, lease, entry, this.parts.timing.keepMs, { ...hints, fields: more }).then(
      (written) => (written ? undefined : this.leaseLost(lease)),
      () => undefined,
    );
  }

  hints(listener: UpstreamHints): void {
    this.sequenced.listen(listener);
  }

  refreshModes(): void {
    if (this.role === 'owner') this.sequenced.refresh();
    else if (this.role !== 'ended') this.input.forward({ type: 'modes' });
  }

  /** Sequenced input of this replica's clients: written here by the owner, or put in the input stream for it. */
  submitInput(input: SequencedInput): void {
    if (this.role === 'owner') this.sequenced.submit(input);
    else if (this.role !== 'ended') {
      const { data, writer, seq, more } = input;
      this.input.forward({ type: 'input', data, writer, ...(seq === null ? {} : { seq }), ...(more ? { more } : {}) });
    }
  }

  /** The last seq of `clientId` written to the terminal, as the seqs hash (and, as owner, this replica) knows it. */
  async lastInputSeq(clientId: string): Promise<number> {
    const stored = Number(await this.parts.redis.hget(this.keys.seqs, clientId));
    return Math.max(Number.isSafeInteger(stored) ? stored : 0, this.sequenced.known(clientId));
  }

  // ---- both -------------------------------------------------------------------------------------------

  /** Keystrokes of this replica's clients: to the tmux client here, or to the owner through the input stream. */
  private write(chunk: Buffer): void {
    if (this.role === 'owner') this.attachment?.stream.write(chunk);
    else if (this.role !== 'ended') this.input.forward({ type: 'input', data: chunk.toString('utf8') });
  }

  resize(cols: number, rows: number): void {
    if (this.role === 'owner') this.resizeOwned(cols, rows);
    else if (this.role !== 'ended') {
      this.size = { cols, rows };
      this.input.forward({ type: 'resize', cols, rows });
    }
  }

  repaint(): void {
    if (this.role === 'owner') this.attachment?.repaint();
    else if (this.role !== 'ended') this.input.forward({ type: 'repaint' });
  }

  /** Leaves: the tmux client (if this replica runs it) is ended first, then the lease is given up. */
  kill(): Promise<void> {
    return this.finish({ code: null, signal: 'SIGHUP' });
  }

  private finish(status: ExitStatus): Promise<void> {
    if (this.cleanup) return this.cleanup;
    this.role = 'ended';
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.reader?.disconnect();
    this.reader = null;
    this.readWanted?.();
    const attachment = this.attachment;
    this.attachment = null;
    this.sequenced.close();
    const lease = this.lease;
    this.lease = null;
    this.owns(false);
    this.cleanup = (async () => {
      if (attachment) await attachment.kill().catch(() => undefined);
      // Only once the tmux client is gone: the next owner's never overlaps it.
      if (lease) await this.parts.scripts.release(this.keys, lease).catch(() => false);
      this.resolveExit(status);
    })();
    return this.cleanup;
  }
}
