import { LEDGER_CAPACITY } from './input-writer.js';

const MAX_PENDING = 4096;

/**
 * Which input each writer (client_id or connection key) had written to the terminal before each
 * byte of its output was read: `record(writer, seq, offset)` says seq was written when the output
 * read so far ended at `offset` (so every byte from `offset` on was read after it). An output frame
 * whose first byte is at offset F carries, for a client, the highest seq recorded at or before F:
 * its echo can only be in that frame or a later one. Works the same for the owner of a terminal
 * (offsets of its own reads) and for a replica that follows it (offsets carried in the stream).
 */
export class AckBook {
  /** Acks not yet reached by the output, in order of offset. */
  private readonly pending: { writer: string; seq: number; offset: number }[] = [];
  /** writer → the highest seq reached by the output so far (bounded like the input ledger). */
  private readonly reached = new Map<string, number>();
  /** writer → the highest seq recorded at all. */
  private readonly recorded = new Map<string, number>();

  record(writer: string, seq: number, offset: number): void {
    this.pending.push({ writer, seq, offset });
    // A terminal that prints nothing for very long (typing at a password prompt): the oldest apply now.
    if (this.pending.length > MAX_PENDING) this.advance(this.pending[this.pending.length - MAX_PENDING].offset);
    remember(this.recorded, writer, seq);
  }

  /** The output reached `offset` (a frame starts there): every ack recorded at or before it applies from now on. */
  advance(offset: number): void {
    let taken = 0;
    while (taken < this.pending.length && this.pending[taken].offset <= offset) {
      const { writer, seq } = this.pending[taken];
      remember(this.reached, writer, seq);
      taken += 1;
    }
    if (taken > 0) this.pending.splice(0, taken);
  }

  /** The highest seq of `writer` written before the output's current position; 0 when none is known. */
  reachedBy(writer: string): number {
    return this.reached.get(writer) ?? 0;
  }

  /** The highest seq of `writer` known to be written; 0 when none is known. */
  latest(writer: string): number {
    return this.recorded.get(writer) ?? 0;
  }
}

function remember(map: Map<string, number>, writer: string, seq: number): void {
  const known = map.get(writer) ?? 0;
  map.delete(writer);
  map.set(writer, Math.max(known, seq));
  if (map.size > LEDGER_CAPACITY) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
}
