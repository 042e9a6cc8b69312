import { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { EnvironmentSpec, ExitStatus, TerminalSize } from '../../runtime/runtime.provider.js';
import type { SequencedInput } from '../input/input-writer.js';
import type { UpstreamHints } from '../low-latency.js';
import type { SessionUpstream, UpstreamHistory } from '../terminal-session.js';
import { ClusterOwner } from './cluster-owner.js';
import { ClusterParts, errorText, StreamPosition, UpstreamCore } from './cluster-parts.js';
import { FollowerReader } from './follower-reader.js';
import { InputStream } from './input-stream.js';
import { ClusterInput } from './owner-input.js';
import { readSnapshot } from './stream-entries.js';
import { TerminalKeys } from './terminal-scripts.js';

type Role = 'follower' | 'taking' | 'owner' | 'ended';

/** Takeovers that fail in a row before the follower gives up and its clients reconnect. */
const MAX_TAKEOVER_FAILURES = 5;

/**
 * One environment's terminal upstream in a replica that shares it through Redis (docs/terminal.md,
 * "Several replicas"). To its TerminalSession it is an upstream like the runtime's (a Duplex of
 * keystrokes in, screen out), in one of two roles:
 *
 * - **owner** (holds the environment's lease; cluster-owner.ts): runs the one tmux client of the
 *   environment, writes its output to the output stream under the fence (each write checks the
 *   lease atomically) as well as to its session, and applies what the other replicas put in the
 *   input stream;
 * - **follower** (follower-reader.ts): reads the output stream into its session, and puts its
 *   clients' input, resizes and redraw requests in the input stream.
 *
 * A follower whose session has clients takes a vacant lease (its owner died or left): it reads
 * what remains of the stream, then attaches a new tmux client to the same tmux session and goes on
 * from the stream's end offset. An owner that loses its lease (fenced) ends its tmux client and
 * follows the new owner; its clients are redrawn. Offsets are the stream's, so every replica's session holds the same bytes at the same
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
  private history: UpstreamHistory | undefined;
  private resolveExit: (status: ExitStatus) => void = () => undefined;
  private role: Role = 'follower';
  private readonly at = new StreamPosition();
  private readonly follower: FollowerReader;
  private readonly owner: ClusterOwner;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  /** The lease was seen vacant at the last tick (a follower takes it at the second sighting). */
  private vacantSeen = false;
  private takeoverFailures = 0;
  private cleanup: Promise<void> | null = null;
  /** Sequenced input and mode hints, as owner or follower (owner-input.ts). */
  private readonly sequenced: ClusterInput;
  /** The session's listener for skips over missed bytes (SessionUpstream.onResync). */
  private resynced: ((offset: number) => void) | null = null;

  private constructor(
    private readonly spec: EnvironmentSpec,
    private readonly parts: ClusterParts,
    size: TerminalSize,
    /** True while this replica's session has clients: only then does it take over a vacant lease. */
    private readonly wanted: () => boolean,
  ) {
    this.keys = new TerminalKeys(spec.id);
    this.input = new InputStream(parts.redis, parts.keyPrefix, this.keys, parts.timing);
    this.sequenced = new ClusterInput({
      end: () => this.at.end,
      writeAlone: (id, taken) => this.owner.writeHints(id, taken),
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
    const core: UpstreamCore = {
      spec,
      parts,
      keys: this.keys,
      at: this.at,
      stream: this.stream,
      sequenced: this.sequenced,
      finish: (status) => void this.finish(status),
    };
    this.follower = new FollowerReader({
      ...core,
      following: () => this.role === 'follower',
      skipped: (offset) => {
        if (this.resynced) this.resynced(offset);
        else this.history = { base: offset, chunks: [] };
      },
    });
    this.owner = new ClusterOwner(
      {
        ...core,
        input: this.input,
        owner: () => this.role === 'owner',
        attached: (name) => (this.sessionName = name),
        fenced: (why) => void this.demote(why),
      },
      size,
    );
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
    const { leases, replica, timing } = this.parts;
    const deadline = Date.now() + timing.ownerWaitMs;
    for (;;) {
      const lease = await leases.acquire(this.keys, replica, timing.leaseMs);
      if (lease) {
        await this.ownFresh(lease);
        break;
      }
      // Held: follow, once the owner has said which session it attached to (it may be attaching right now).
      const followed = await this.follower.follow();
      if (followed) {
        this.sessionName = followed.sessionName;
        this.history = followed.history;
        break;
      }
      if (Date.now() > deadline) throw new Error('the replica holding this terminal does not answer');
      await delay(100);
    }
    this.timer = setInterval(() => void this.tick(), timing.renewMs);
  }

  // ---- the roles ----------------------------------------------------------------------------------------

  private async tick(): Promise<void> {
    if (this.ticking || this.role === 'ended' || this.role === 'taking') return;
    this.ticking = true;
    const { leases, replica, timing } = this.parts;
    try {
      if (this.role === 'owner') {
        await this.owner.renew();
      } else if (this.role === 'follower' && this.wanted()) {
        // Taken at the second sighting of a vacant lease (a second later): an owner back from a Redis
        // outage, whose lease expired meanwhile, takes it again first and keeps its clients.
        const vacant = !(await leases.held(this.keys));
        if (vacant && this.vacantSeen) {
          const lease = await leases.acquire(this.keys, replica, timing.leaseMs);
          if (lease) await this.takeOver(lease);
        }
        this.vacantSeen = vacant;
      }
    } catch {
      // Redis unreachable: the owner keeps its tmux client and its own clients; see FollowerReader for followers.
    } finally {
      this.ticking = false;
    }
  }

  /** Owner from the start: the stream's history (if an earlier owner left one), then a tmux client. */
  private async ownFresh(lease: string): Promise<void> {
    this.role = 'owner';
    this.owner.hold(lease);
    const snapshot = await readSnapshot(this.parts.redis, this.keys, '0-0');
    this.history = this.at.startFrom(snapshot);
    await this.owner.attach(false);
  }

  /**
   * The owner is gone and this follower has clients: it reads what is left, then continues the
   * stream. A takeover that fails (Redis too slow to answer in time, a tmux client that would not
   * attach) gives the lease up and goes on following, so its clients stay; only after
   * MAX_TAKEOVER_FAILURES in a row do they reconnect.
   */
  private async takeOver(lease: string): Promise<void> {
    this.role = 'taking';
    this.owner.hold(lease);
    this.logger.log(`Taking over the terminal of ${this.spec.id} (lease ${lease})`);
    try {
      if (!(await this.follower.catchUp())) return;
      this.role = 'owner';
      await this.owner.attach(true);
      this.takeoverFailures = 0;
    } catch (error) {
      this.takeoverFailures += 1;
      const giveUp = this.takeoverFailures >= MAX_TAKEOVER_FAILURES;
      this.logger.warn(
        `Could not take over the terminal of ${this.spec.id}: ${errorText(error)}; ${giveUp ? 'its clients reconnect' : 'it goes on following'}`,
      );
      if (giveUp) await this.finish({ code: null, signal: 'takeover failed' });
      else await this.follow(() => this.follower.restart());
    }
  }

  /**
   * Another replica holds the lease this one had (it was fenced off: its renewals did not reach
   * Redis in time). Rather than dropping its clients, it ends its tmux client and follows that
   * replica from the stream's newest entry; its clients get `reset` and a redraw, since what it
   * showed them after its last accepted write never reached the stream.
   */
  private async demote(why: string): Promise<void> {
    if (this.role !== 'owner') return;
    this.logger.warn(`This replica no longer owns the terminal of ${this.spec.id} (${why}); it follows the replica that does`);
    await this.follow(() => this.follower.rejoin());
  }

  /**
   * Back to following, once the owner side has stopped (its tmux client ended, a lease it held
   * given up). Redis too slow to answer is tried again, as a follower's reading is, for the outage
   * grace; only then do its clients reconnect.
   */
  private async follow(reading: () => Promise<boolean>): Promise<void> {
    this.role = 'follower';
    this.vacantSeen = false;
    await this.owner.end();
    this.sequenced.close();
    const since = Date.now();
    while (this.role === 'follower') {
      try {
        if (await reading()) this.follower.wake();
        return;
      } catch (error) {
        if (Date.now() - since > this.parts.timing.outageGraceMs) {
          this.logger.warn(`The terminal stream of ${this.spec.id} cannot be followed (${errorText(error)}); its clients reconnect`);
          void this.finish({ code: null, signal: 'shared state unavailable' });
          return;
        }
        await delay(200);
      }
    }
  }

  private onRead(): void {
    if (this.role === 'owner') this.owner.resume();
    this.follower.wake();
  }

  takeHistory(): UpstreamHistory | undefined {
    const { history } = this;
    this.history = undefined;
    return history;
  }

  onResync(listener: (offset: number) => void): void {
    this.resynced = listener;
  }

  // ---- low-latency additions (docs/terminal.md) ---------------------------------------------------------

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

  // ---- this replica's clients, as owner or follower -----------------------------------------------------

  /** Keystrokes of this replica's clients: to the tmux client here, or to the owner through the input stream. */
  private write(chunk: Buffer): void {
    if (this.role === 'owner') this.owner.write(chunk);
    else if (this.role !== 'ended') this.input.forward({ type: 'input', data: chunk.toString('utf8') });
  }

  resize(cols: number, rows: number): void {
    if (this.role === 'owner') this.owner.resize(cols, rows);
    else if (this.role !== 'ended') {
      this.owner.sized({ cols, rows });
      this.input.forward({ type: 'resize', cols, rows });
    }
  }

  repaint(): void {
    if (this.role === 'owner') this.owner.repaint();
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
    this.follower.stop();
    this.follower.wake();
    this.sequenced.close();
    this.cleanup = this.owner.end().then(() => this.resolveExit(status));
    return this.cleanup;
  }
}
