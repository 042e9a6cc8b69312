import { StringDecoder } from 'node:string_decoder';
import { Logger } from '@nestjs/common';
import type { ExitStatus, TerminalAttachment, TerminalSize } from '../../runtime/runtime.provider.js';
import type { UpstreamCore } from './cluster-parts.js';
import type { InputMessage, InputStream } from './input-stream.js';
import type { TakenHints } from './owner-input.js';
import { exitId, minId, outputId } from './stream-entries.js';

/** What the owner side needs of its ClusterUpstream. */
export interface OwnerHost extends UpstreamCore {
  input: InputStream;
  /** True while the upstream is the owner. */
  owner(): boolean;
  /** The tmux session the owner's client attached to. */
  attached(sessionName: string): void;
  /** Another replica holds the lease: this one stops owning and follows it. */
  fenced(why: string): void;
}

/**
 * The owner side of a ClusterUpstream (docs/terminal.md, "Several replicas"): holds the lease
 * (renewal, and taking it again when it expired while Redis was away), runs the environment's one
 * tmux client, writes its output and the input hints to the output stream under the fence (each
 * write checks the lease atomically), and applies what the other replicas put in the input stream.
 */
export class ClusterOwner {
  private readonly logger = new Logger('TerminalCluster');
  private lease: string | null = null;
  private attachment: TerminalAttachment | null = null;
  private decoder = new StringDecoder('utf8');
  /** Stops this owner's reading of the input stream. */
  private stopInput: (() => void) | null = null;
  private reclaiming: Promise<void> | null = null;
  private owning = false;
  private tookOver = false;

  constructor(
    private readonly host: OwnerHost,
    private size: TerminalSize,
  ) {}

  /** The lease this upstream acquired (it is about to own the terminal). */
  hold(lease: string): void {
    this.lease = lease;
  }

  /** A follower's clients resized: the size its tmux client gets if this replica attaches one. */
  sized(size: TerminalSize): void {
    this.size = size;
  }

  /** Renews the lease; a lost one is taken again or given up (leaseLost). */
  async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    const { leases, timing } = this.host.parts;
    if (!(await leases.renew(this.host.keys, lease, timing.leaseMs))) await this.leaseLost(lease);
  }

  /**
   * A renewal or a write found the lease is no longer `lease`. If nobody holds it (it expired
   * while Redis was away), the owner takes it again with a new epoch and goes on (its own clients
   * notice nothing; the followers find a gap in the stream and redraw); if another replica holds
   * it, this one ends its tmux client and follows that replica (its clients are redrawn).
   */
  private leaseLost(lease: string): Promise<void> {
    if (!this.host.owner() || this.lease !== lease) return Promise.resolve();
    this.reclaiming ??= (async () => {
      const { leases, replica, timing } = this.host.parts;
      const again = await leases.acquire(this.host.keys, replica, timing.leaseMs).catch(() => null);
      if (!this.host.owner()) return;
      if (again) {
        this.logger.warn(`The lease on the terminal of ${this.host.spec.id} had expired; this replica took it again (${again})`);
        this.lease = again;
      } else {
        this.lose('another replica holds its lease');
      }
    })().finally(() => (this.reclaiming = null));
    return this.reclaiming;
  }

  /** Attaches this environment's one tmux client and starts writing its output and reading the others' input. */
  async attach(tookOver: boolean): Promise<void> {
    const { spec, parts, keys, sequenced } = this.host;
    this.tookOver = tookOver;
    const attachment = await parts.runtime.attachTerminal(spec, this.size);
    if (!this.host.owner()) {
      await attachment.kill().catch(() => undefined);
      return;
    }
    this.attachment = attachment;
    this.owns(true);
    this.decoder = new StringDecoder('utf8');
    this.host.attached(attachment.sessionName);
    const replies = await parts.redis
      .multi()
      .hset(keys.meta, 'name', attachment.sessionName, 'end', this.host.at.end)
      .pexpire(keys.meta, parts.timing.keepMs)
      .hgetall(keys.seqs)
      .exec();
    sequenced.own(attachment, replies?.[2]?.[1], this.host.at.lastId);
    attachment.stream.on('data', (chunk: Buffer) => this.publish(chunk));
    attachment.stream.on('error', (error: Error) => this.logger.warn(`Upstream of ${spec.id}: ${error.message}`));
    void attachment.exit.then((status) => this.attachmentExited(attachment, status));
    this.stopInput?.();
    this.stopInput = this.host.input.consume(parts.streams, {
      active: () => this.host.owner() && this.attachment === attachment,
      apply: (message) => this.apply(message),
      caughtUp: () => sequenced.caughtUp(),
    });
  }

  /** The tmux client's output: to this replica's session and, under the fence, to the stream. */
  private publish(chunk: Buffer): void {
    const lease = this.lease;
    const attachment = this.attachment;
    if (!this.host.owner() || !lease || !attachment) return;
    const text = this.decoder.write(chunk);
    if (text.length === 0) return;
    const { parts, keys, at } = this.host;
    const bytes = Buffer.from(text, 'utf8');
    const start = at.end;
    at.end += bytes.length;
    const entry = {
      id: outputId(start),
      minId: minId(Math.min(start, at.end - parts.replayBufferBytes)),
      field: 'd',
      value: text,
      end: at.end,
    };
    const hints = this.host.sequenced.published(start, bytes);
    void parts.scripts.write(keys, lease, entry, parts.timing.keepMs, hints).then(
      (written) => (written ? undefined : this.leaseLost(lease)),
      // Redis unreachable: this replica's clients keep their terminal; the followers will find a gap.
      () => undefined,
    );
    if (!this.host.stream.push(bytes)) attachment.stream.pause();
  }

  /** As owner: an entry of acks and modes only (`id` = `<ms>-*`), under the fence like output. */
  writeHints(id: string, { fields, hints }: TakenHints): void {
    const lease = this.lease;
    const [field, value, ...more] = fields;
    if (!this.host.owner() || !lease || field === undefined || value === undefined) return;
    const { parts, keys, at } = this.host;
    const entry = { id, minId: minId(at.end - parts.replayBufferBytes), field, value, end: at.end };
    void parts.scripts.write(keys, lease, entry, parts.timing.keepMs, { ...hints, fields: more }).then(
      (written) => (written ? undefined : this.leaseLost(lease)),
      () => undefined,
    );
  }

  /** One message of another replica's clients, applied to the tmux client. */
  private apply(message: InputMessage): void {
    switch (message.type) {
      case 'input':
        this.host.sequenced.apply({
          data: message.data,
          writer: message.writer ?? '~remote',
          seq: message.seq ?? null,
          more: message.more ?? false,
        });
        return;
      case 'resize':
        this.resize(message.cols, message.rows);
        return;
      case 'repaint':
        this.repaint();
        return;
      case 'modes':
        this.host.sequenced.refresh();
        return;
    }
  }

  /** Keystrokes of this replica's clients, to the tmux client. */
  write(chunk: Buffer): void {
    this.attachment?.stream.write(chunk);
  }

  resize(cols: number, rows: number): void {
    if (cols === this.size.cols && rows === this.size.rows) return;
    this.size = { cols, rows };
    this.attachment?.resize(cols, rows);
  }

  repaint(): void {
    this.attachment?.repaint();
  }

  /** The session reads again: the tmux client's output, paused for it, goes on. */
  resume(): void {
    this.attachment?.stream.resume();
  }

  private attachmentExited(attachment: TerminalAttachment, status: ExitStatus): void {
    if (this.attachment !== attachment) return;
    this.attachment = null;
    const lease = this.lease;
    if (status.code === null || !lease || !this.host.owner()) {
      this.host.finish(status);
      return;
    }
    // The session ended (its shell exited): every replica's clients learn it from the stream.
    const { parts, keys, at } = this.host;
    const marker = {
      id: exitId(at.end),
      minId: minId(at.end - parts.replayBufferBytes),
      field: 'x',
      value: String(status.code),
      end: at.end,
    };
    void parts.scripts
      .write(keys, lease, marker, parts.timing.keepMs)
      .catch(() => false)
      .then(() => this.host.finish(status));
  }

  private lose(why: string): void {
    if (!this.host.owner()) return;
    this.lease = null;
    this.host.fenced(why);
  }

  /** Reports whether this replica runs the environment's tmux client (metrics). */
  private owns(owns: boolean): void {
    if (this.owning === owns) return;
    this.owning = owns;
    this.host.parts.owning(owns, this.tookOver);
  }

  /**
   * Stops at once (no more reading of the input stream, no more writes) and resolves once the tmux
   * client, if this replica runs it, has ended and then the lease is given up: the next owner's
   * client never overlaps it.
   */
  end(): Promise<void> {
    this.stopInput?.();
    this.stopInput = null;
    const attachment = this.attachment;
    this.attachment = null;
    const lease = this.lease;
    this.lease = null;
    this.owns(false);
    return (async () => {
      if (attachment) await attachment.kill().catch(() => undefined);
      if (lease) await this.host.parts.leases.release(this.host.keys, lease).catch(() => false);
    })();
  }
}
