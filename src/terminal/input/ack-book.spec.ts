import { AckBook } from './ack-book.js';

describe('AckBook', () => {
  it("gives a frame the highest seq written before the frame's first byte was read", () => {
    const book = new AckBook();
    book.record('c', 1, 100);
    book.record('c', 2, 105);
    // A frame starting at 100 was read after seq 1 was written, not after seq 2.
    book.advance(100);
    expect(book.reachedBy('c')).toBe(1);
    expect(book.latest('c')).toBe(2);
    book.advance(105);
    expect(book.reachedBy('c')).toBe(2);
    expect(book.reachedBy('nobody')).toBe(0);
  });

  it('never goes back for a writer (a re-acknowledged resend carries the same seq)', () => {
    const book = new AckBook();
    book.record('c', 3, 10);
    book.record('c', 3, 20);
    book.advance(30);
    expect(book.reachedBy('c')).toBe(3);
  });
});
