/** Size of the blocks the buffer copies output into. */
const BLOCK_BYTES = 16 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * The session's recent output, indexed by absolute byte offset: chunk i covers
 * [starts[i], starts[i] + chunks[i].length). The oldest chunks go once the total exceeds the
 * capacity.
 *
 * Appended bytes are copied into blocks this buffer owns (16 KiB, allocated outside Node's Buffer
 * pool), and the chunks are views of those blocks. Keeping the caller's Buffers instead would pin
 * whatever they are slices of: a small `Buffer.from()` is a slice of a shared 64 KiB pool slab,
 * which stays allocated while any slice of it lives, so a few KiB of kept output could hold many
 * times its size (measured by the `load` bench: 41 MiB of replay data held 180 MiB of slabs). With
 * owned blocks, a buffer holds at most its capacity plus one block.
 */
export class ReplayBuffer {
  private readonly chunks: Buffer[] = [];
  /** The block being filled, and how much of it is used. */
  private block: Buffer | null = null;
  private blockUsed = 0;
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
    this.block = null;
    this.blockUsed = 0;
    for (const chunk of chunks) this.append(chunk);
  }

  /** Appends (a copy of) `chunk` and returns the offset after it. */
  append(chunk: Buffer): number {
    for (let copied = 0; copied < chunk.length; ) {
      const part = this.copyIntoBlock(chunk.subarray(copied));
      this.chunks.push(part);
      this.starts.push(this.endOffset);
      this.endOffset += part.length;
      this.bytes += part.length;
      copied += part.length;
    }
    this.evict();
    return this.endOffset;
  }

  /** Copies as much of `data` as fits into the current block (a new one when it is full) and returns that view. */
  private copyIntoBlock(data: Buffer): Buffer {
    if (data.length >= BLOCK_BYTES) {
      // Large output gets a block of its own, exactly its size.
      const own = Buffer.allocUnsafeSlow(data.length);
      data.copy(own);
      return own;
    }
    if (!this.block || this.blockUsed === this.block.length) {
      this.block = Buffer.allocUnsafeSlow(BLOCK_BYTES);
      this.blockUsed = 0;
    }
    const length = Math.min(data.length, this.block.length - this.blockUsed);
    const view = this.block.subarray(this.blockUsed, this.blockUsed + length);
    data.copy(view, 0, 0, length);
    this.blockUsed += length;
    return view;
  }

  /** Drops the oldest chunks until at most `bytes` are held (the newest chunk always stays): the process's replay budget. */
  trimTo(bytes: number): void {
    this.evict(Math.min(bytes, this.capacity));
  }

  private evict(limit = this.capacity): void {
    while (this.bytes > limit && this.head < this.chunks.length - 1) {
      this.bytes -= this.chunks[this.head].length;
      // Let go of the view at once, so its block is freed once none of its views is held.
      this.chunks[this.head] = EMPTY;
      this.head += 1;
    }
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.starts.splice(0, this.head);
      this.head = 0;
    }
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
