import { decodeInput, encodeInput, type InputMessage } from './input-stream.js';
import { asBytesEntry, exitId, historyOf, outputId, parseBytesEntry, parseEntry, type RawEntry, skipTo } from './stream-entries.js';

const output = (start: number, data: string): RawEntry => [outputId(start), ['d', data]];

describe("the terminal streams' entries", () => {
  it('orders an exit after the output before it and before the output after it', () => {
    const ids = [outputId(100), exitId(105), outputId(105)].map((id) => id.split('-').map(Number));
    const sorted = [...ids].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(sorted).toEqual(ids);
    expect(parseEntry([exitId(105), ['x', '0']])).toEqual({ kind: 'exit', id: '105-0', code: 0 });
    expect(parseEntry(['105-1', ['?', 'unknown']])).toBeNull();
  });

  it('reads an entry as bytes: the output as UTF-8, the other fields as they were, exits and unknown entries too', () => {
    const read = asBytesEntry([outputId(100), ['d', 'é!', 'a', 'w1:3']]);
    expect(read).toEqual({ id: '100-1', fields: ['d', '', 'a', 'w1:3'], bytes: Buffer.from('é!', 'utf8') });
    expect(parseBytesEntry(read)).toEqual({ kind: 'output', start: 100, bytes: Buffer.from([0xc3, 0xa9, 0x21]) });
    expect(parseBytesEntry(asBytesEntry([exitId(105), ['x', '3']]))).toEqual({ kind: 'exit', code: 3 });
    expect(parseBytesEntry(asBytesEntry(['105-1', ['m', 'modes']]))).toBeNull();
    expect(parseBytesEntry(asBytesEntry(['x-1', ['d', 'a']]))).toBeNull();
  });

  it("gives a session the contiguous bytes up to the stream's end, counted in UTF-8 bytes", () => {
    const entries = [output(1000, 'ab'), output(1002, 'é'), [exitId(1004), ['x', '0']] as RawEntry, output(1004, 'c')];
    const { history, lastId } = historyOf({ entries, end: 1005, name: 'devpocket_x' });
    expect(history.base).toBe(1000);
    expect(Buffer.concat(history.chunks).toString('utf8')).toBe('abéc');
    expect(lastId).toBe('1004-1');
  });

  it('keeps only what follows a gap, and nothing when the bytes do not reach the end', () => {
    const gap = historyOf({ entries: [output(1000, 'ab'), output(1010, 'cd')], end: 1012, name: null });
    expect(gap.history).toEqual({ base: 1010, chunks: [Buffer.from('cd')] });
    const short = historyOf({ entries: [output(1000, 'ab')], end: 1005, name: null });
    expect(short.history).toEqual({ base: 1005, chunks: [] });
    expect(historyOf({ entries: [], end: 77, name: null }).history).toEqual({ base: 77, chunks: [] });
  });

  it('skips to the newest entry only when the stream no longer holds what follows a reader', () => {
    const [oldest, newest] = [output(1000, 'ab'), output(1010, 'cé')];
    // The entry at the reader's offset, or one before it, is still there: it reads on.
    expect(skipTo(1000, oldest, newest)).toBeNull();
    expect(skipTo(1001, oldest, newest)).toBeNull();
    // Trimmed past it: on from the newest entry's id, at the offset after its UTF-8 bytes.
    expect(skipTo(990, oldest, newest)).toEqual({ lastId: '1010-1', end: 1013 });
    // An empty stream, or an exit at either end: it reads on (and finds the gap or the exit).
    expect(skipTo(990, null, null)).toBeNull();
    expect(skipTo(990, oldest, [exitId(1012), ['x', '0']])).toBeNull();
  });

  it('carries input, sizes and redraw requests to the owner as they were sent', () => {
    const messages: InputMessage[] = [{ type: 'input', data: 'ls -l\r' }, { type: 'resize', cols: 120, rows: 40 }, { type: 'repaint' }];
    for (const message of messages) expect(decodeInput(encodeInput(message))).toEqual(message);
    expect(decodeInput(['t', 'r', 'c', 'wide', 'r', '40'])).toBeNull();
    expect(decodeInput(['t', 'z'])).toBeNull();
  });
});
