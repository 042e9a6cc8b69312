/**
 * The session's recent output, indexed by absolute byte offset: chunk i covers
 * [starts[i], starts[i] + chunks[i].length). Chunks are kept as sent, never copied; the oldest go
 * once the total exceeds the capacity.
 */
export class ReplayBuffer {
  private readonly chunks: Buffer[] = [];
  private readonly starts: number[] = [];
  private head = 0;
  private bytes = 0;
  private endOffset: number;

  /** `base` is the offset of the first byte: streams of different sessions never share offsets. */
  constructor(
    private readonly capacity: number,
    base = 0,
  ) {
    this.endOffset = base;
  }

  /** Offset just after the newest byte. */
  get end(): number {
    return this.endOffset;
  }

  /** Oldest offset still held. */
  get start(): number {
    return this.head < this.chunks.length ? this.starts[this.head] : this.endOffset;
  }

  get size(): number {
    return this.bytes;
  }

  /** Forgets everything and starts again at `base` with `chunks` (the history of a stream shared by several replicas). */
  restart(base: number, chunks: Buffer[]): void {
    this.chunks.length = 0;
    this.starts.length = 0;
    this.head = 0;
    this.bytes = 0;
    this.endOffset = base;
    for (const chunk of chunks) this.append(chunk);
  }

  /** Appends and returns the offset after the chunk. */
  append(chunk: Buffer): number {
    this.chunks.push(chunk);
    this.starts.push(this.endOffset);
    this.endOffset += chunk.length;
    this.bytes += chunk.length;
    while (this.bytes > this.capacity && this.head < this.chunks.length - 1) {
      this.bytes -= this.chunks[this.head].length;
      this.head += 1;
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.starts.splice(0, this.head);
      this.head = 0;
    }
    return this.endOffset;
  }

  /** Every byte after `offset`, or null when they are no longer (or never were) all here. */
  since(offset: number): Buffer[] | null {
    if (offset > this.endOffset || offset < this.start) return null;
    const result: Buffer[] = [];
    for (let i = this.head; i < this.chunks.length; i += 1) {
      const chunkStart = this.starts[i];
      const chunk = this.chunks[i];
      if (chunkStart + chunk.length <= offset) continue;
      result.push(chunkStart >= offset ? chunk : chunk.subarray(offset - chunkStart));
    }
    return result;
  }
}
