import { ReplayBuffer } from './replay-buffer.js';

const b = (text: string): Buffer => Buffer.from(text);
const join = (chunks: Buffer[] | null): string | null => (chunks === null ? null : Buffer.concat(chunks).toString());

describe('ReplayBuffer', () => {
  it('returns exactly the bytes after an offset, across chunk boundaries and inside a chunk', () => {
    const buffer = new ReplayBuffer(1024);
    expect(buffer.append(b('hello '))).toBe(6);
    expect(buffer.append(b('world'))).toBe(11);
    expect(join(buffer.since(0))).toBe('hello world');
    expect(join(buffer.since(6))).toBe('world');
    expect(join(buffer.since(8))).toBe('rld');
    expect(join(buffer.since(11))).toBe('');
  });

  it("starts again at a shared stream's offsets with the bytes it still holds", () => {
    const buffer = new ReplayBuffer(1024, 5);
    buffer.append(b('local'));
    buffer.restart(1000, [b('abc'), b('def')]);
    expect(buffer.start).toBe(1000);
    expect(buffer.end).toBe(1006);
    expect(join(buffer.since(1002))).toBe('cdef');
    expect(buffer.since(5)).toBeNull();
    expect(buffer.append(b('g'))).toBe(1007);
  });

  it('refuses offsets it no longer holds, or never held', () => {
    const buffer = new ReplayBuffer(10);
    buffer.append(b('0123456789'));
    buffer.append(b('abcdefghij'));
    expect(buffer.start).toBe(10);
    expect(buffer.since(5)).toBeNull();
    expect(join(buffer.since(10))).toBe('abcdefghij');
    expect(buffer.since(21)).toBeNull();
    expect(buffer.size).toBe(10);
  });

  it('starts at a base offset, so offsets of another stream fall outside it', () => {
    const buffer = new ReplayBuffer(1024, 1_000_000);
    expect(buffer.append(b('abc'))).toBe(1_000_003);
    expect(join(buffer.since(1_000_001))).toBe('bc');
    expect(buffer.since(2)).toBeNull();
    expect(buffer.since(5_000_000)).toBeNull();
  });

  it('keeps memory bounded over many chunks', () => {
    const buffer = new ReplayBuffer(4096);
    for (let i = 0; i < 100_000; i += 1) buffer.append(b('x'.repeat(64)));
    expect(buffer.size).toBeLessThanOrEqual(4096);
    expect(buffer.end).toBe(6_400_000);
    expect(join(buffer.since(buffer.end - 128))).toBe('x'.repeat(128));
  });

  it("holds copies in blocks of its own, never the callers' Buffers or the pool slabs they are slices of", () => {
    const buffer = new ReplayBuffer(64 * 1024);
    const appended: Buffer[] = [];
    for (let i = 0; i < 5_000; i += 1) {
      // Small Buffer.from() results are slices of Node's shared pool slabs.
      const chunk = Buffer.from(`line ${i} ${'y'.repeat(40)}\r\n`);
      appended.push(chunk);
      buffer.append(chunk);
    }
    const held = buffer.since(buffer.start)!;
    expect(Buffer.concat(held).toString()).toBe(Buffer.concat(appended).subarray(-buffer.size).toString());
    const callers = new Set(appended.map((chunk) => chunk.buffer));
    const blocks = new Set(held.map((chunk) => chunk.buffer));
    for (const block of blocks) expect(callers.has(block)).toBe(false);
    // At most the capacity plus the block being filled and the one the oldest view is in.
    const blockBytes = [...blocks].reduce((sum, block) => sum + block.byteLength, 0);
    expect(blockBytes).toBeLessThanOrEqual(64 * 1024 + 2 * 16 * 1024);
  });
});
