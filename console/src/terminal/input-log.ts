import { splitInput } from './keys.js';

/**
 * The console's input until the server has written it (docs/console.md#the-connection): every
 * `input` message gets the next sequence number of this client (`seq`, 1, 2, 3…, consecutive per
 * `client_id`) and is kept until acknowledged (an output frame's `ack`, an `ack` message, or a
 * `welcome`'s `input.seq`). After each `welcome` whatever is kept beyond the welcome's
 * `input.seq` is sent again, in order; the server writes each seq once, so nothing is lost and
 * nothing is doubled across reconnects.
 *
 * Pure (no timers, no sockets): TerminalConnection drives it.
 */

export interface InputEntry {
  seq: number;
  data: string;
  /** `part: "more"`: a later entry continues this logical input (a paste longer than one frame). */
  more: boolean;
  /** Sent on some socket (possibly written already); an entry never sent can safely be renumbered. */
  sent: boolean;
}

/** What is kept at most (UTF-16 units): a paste of 1 MiB fits with room to spare; beyond it input is refused. */
export const MAX_KEPT_CHARS = 4 * 1024 * 1024;
/** One `input` frame's data at most (the server takes 65,536). */
export const MAX_FRAME_CHARS = 32 * 1024;

export class InputLog {
  private readonly kept: InputEntry[] = [];
  private keptChars = 0;
  private last = 0;
  /** The highest seq sent on any socket (or known written). */
  private lastSent = 0;

  constructor(private readonly maxKept = MAX_KEPT_CHARS) {}

  /** The seq of the last input numbered. */
  get lastSeq(): number {
    return this.last;
  }

  /** UTF-16 units kept (not acknowledged yet). */
  get size(): number {
    return this.keptChars;
  }

  /** Whether something sent awaits its acknowledgement. */
  get awaiting(): boolean {
    return this.kept.some((entry) => entry.sent);
  }

  /**
   * Numbers one logical input (split into frames, `more` on all but the last piece) and keeps it.
   * Null, and nothing kept, when it would take the log past its bound.
   */
  add(data: string): InputEntry[] | null {
    if (data.length === 0) return [];
    if (this.keptChars + data.length > this.maxKept) return null;
    const pieces = splitInput(data, MAX_FRAME_CHARS);
    const entries = pieces.map((piece, index) => ({ seq: ++this.last, data: piece, more: index < pieces.length - 1, sent: false }));
    this.kept.push(...entries);
    this.keptChars += data.length;
    return entries;
  }

  /** Everything up to `seq` was written: forget it. */
  ack(seq: number): void {
    while (this.kept.length > 0 && this.kept[0].seq <= seq) this.keptChars -= this.kept.shift()!.data.length;
  }

  /** The entry went out on a socket. */
  markSent(entry: InputEntry): void {
    entry.sent = true;
    this.lastSent = Math.max(this.lastSent, entry.seq);
  }

  /**
   * A welcome told the last seq of this client written to the terminal: forget what it covers and
   * return, in order, what is to be sent (again) on the new socket.
   *
   * When `written` is beyond anything this page sent (its first welcome, when the client id is
   * older than the page; or another tab with a copy of it), entries never sent are renumbered
   * after it (they cannot have been written) and those sent are dropped (at most once rather
   * than twice).
   */
  resume(written: number): InputEntry[] {
    if (written > this.lastSent) {
      this.ack(this.lastSent);
      let seq = written;
      for (const entry of this.kept) entry.seq = ++seq;
      this.last = Math.max(this.last, seq);
      this.lastSent = written;
    }
    this.ack(written);
    return [...this.kept];
  }

  /**
   * A welcome from a server that does not acknowledge input (no `input` in it: an older server):
   * what was sent cannot be confirmed and is forgotten, as before sequence numbers; what was never
   * sent is returned to be sent now.
   */
  resumeUnacknowledged(): InputEntry[] {
    this.forgetSent();
    return [...this.kept];
  }

  /** Drops what has been sent (a server that acknowledges nothing). */
  forgetSent(): void {
    while (this.kept.length > 0 && this.kept[0].sent) this.keptChars -= this.kept.shift()!.data.length;
  }

  /** Forgets everything (no connection is coming by itself: the shell will be a new one). */
  clear(): void {
    this.kept.length = 0;
    this.keptChars = 0;
  }
}
