/**
 * Exactly-once input (docs/terminal.md, "Low-latency additions"): whoever writes to the terminal
 * (the process's one upstream, or the owner replica's) writes each client's sequence numbers once,
 * in order, and keeps a multi-part input (a paste) from being interleaved with other clients' keys.
 */

/** One input as the terminal's writer gets it. */
export interface SequencedInput {
  data: string;
  /**
   * Whose input it is: its connection's `client_id`, or, for a connection without one,
   * `~<process>:<connection>` (never a valid client_id), which only names it for acks and paste holds.
   */
  writer: string;
  /** The client's sequence number, or null for input sent without one. */
  seq: number | null;
  /** More parts of this logical input follow (`"part":"more"`). */
  more: boolean;
}

/** True when `writer` is a client_id (remembered across connections), false for a connection key. */
export const isClientId = (writer: string): boolean => !writer.startsWith('~');

/** How many client_ids a session remembers (the least recently written are forgotten first). */
export const LEDGER_CAPACITY = 1000;
/** How long other clients' input waits at most for a multi-part input to finish. */
export const PASTE_HOLD_MS = 5000;

/** client_id → the last seq written to the terminal, bounded (least recently written forgotten first). */
export class InputLedger {
  private readonly seqs = new Map<string, number>();

  constructor(private readonly capacity = LEDGER_CAPACITY) {}

  /** The last seq written for `clientId`; 0 when none is known. */
  get(clientId: string): number {
    return this.seqs.get(clientId) ?? 0;
  }

  set(clientId: string, seq: number): void {
    this.seqs.delete(clientId);
    this.seqs.set(clientId, seq);
    if (this.seqs.size > this.capacity) {
      const oldest = this.seqs.keys().next();
      if (!oldest.done) this.seqs.delete(oldest.value);
    }
  }

  /** Takes what another writer remembered (a replica that takes a terminal over), keeping the higher seqs. */
  merge(seqs: Iterable<[string, number]>): void {
    for (const [clientId, seq] of seqs) if (seq > this.get(clientId)) this.set(clientId, seq);
  }

  get size(): number {
    return this.seqs.size;
  }
}

export interface InputSink {
  /** Writes bytes to the terminal. */
  write(data: string): void;
  /**
   * `seq` of `writer` is written (now, or earlier: a resend that was dropped is acknowledged again).
   * Called right after the write, so that every byte read from the terminal afterwards follows it.
   * `duplicate`: a resend of input written before, dropped.
   */
  written(writer: string, seq: number, duplicate: boolean): void;
}

/**
 * Writes input to the terminal once and in order per client_id, and holds other writers' input
 * while one writer's multi-part input is unfinished (at most PASTE_HOLD_MS), then writes it in
 * the order it came.
 */
export class InputWriter {
  private holder: string | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private readonly waiting: SequencedInput[] = [];

  constructor(
    private readonly sink: InputSink,
    readonly ledger = new InputLedger(),
    private readonly holdMs = PASTE_HOLD_MS,
  ) {}

  /** Input held behind another writer's multi-part input. */
  get held(): number {
    return this.waiting.length;
  }

  submit(input: SequencedInput): void {
    if (this.holder !== null && this.holder !== input.writer) this.waiting.push(input);
    else this.apply(input);
  }

  /** Stops the hold timer; what waits is dropped (the terminal is going away). */
  close(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    this.waiting.length = 0;
  }

  private apply(input: SequencedInput): void {
    const { writer, seq } = input;
    const known = isClientId(writer) ? this.ledger.get(writer) : 0;
    if (seq !== null && isClientId(writer) && seq <= known) {
      // Already written (a resend after a reconnect): acknowledged again, never written twice.
      this.sink.written(writer, known, true);
    } else {
      this.sink.write(input.data);
      if (seq !== null) {
        if (isClientId(writer)) this.ledger.set(writer, seq);
        this.sink.written(writer, seq, false);
      }
    }
    if (input.more) this.hold(writer);
    else if (this.holder === writer) this.release();
  }

  private hold(writer: string): void {
    if (this.holder === writer) return;
    this.holder = writer;
    this.holdTimer = setTimeout(() => this.release(), this.holdMs);
    this.holdTimer.unref?.();
  }

  /** The multi-part input ended (or took too long): what waited is written in order, until someone holds again. */
  private release(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    this.holder = null;
    const waiting = this.waiting.splice(0);
    for (const input of waiting) {
      if (this.holder !== null && this.holder !== input.writer) this.waiting.push(input);
      else this.apply(input);
    }
  }
}
