import { decodeInput, encodeInput, type InputMessage } from './input-stream.js';
import { decodeAcks, decodeModes, encodeAcks, encodeModes, hintsOf } from './stream-hints.js';

const modes = { echo: false, canonical: true, altScreen: false, cursorKeys: 'normal' as const, bracketedPaste: true, copyMode: false };

describe('what the output stream carries besides bytes, and sequenced input entries', () => {
  it('carries acks of client_ids and connection keys', () => {
    const acks: [string, number][] = [
      ['Xq3v9k2LmZ8pQ1sT4wYb', 42],
      ['~replica-uuid:7', 3],
    ];
    expect(decodeAcks(encodeAcks(acks))).toEqual(acks);
    expect(decodeAcks('bad,=3,x=0,y=-1,z=2.5,ok=9')).toEqual([['ok', 9]]);
  });

  it('carries the modes with their offset, and refuses anything else', () => {
    expect(decodeModes(encodeModes(modes, 1234))).toEqual({ modes, offset: 1234 });
    expect(decodeModes(null)).toBeNull();
    expect(decodeModes('not json')).toBeNull();
    expect(decodeModes(JSON.stringify({ ...modes, cursorKeys: 'odd', offset: 1 }))).toBeNull();
    expect(decodeModes(JSON.stringify(modes))).toBeNull();
  });

  it("reads an entry's hints: an output entry's extra fields, or an entry of hints only", () => {
    expect(hintsOf(['d', 'bytes', 'a', 'c1234567890123456=5', 'o', encodeModes(modes, 9)])).toEqual({
      acks: [['c1234567890123456', 5]],
      modes: { modes, offset: 9 },
    });
    expect(hintsOf(['a', '~r:1=2'])).toEqual({ acks: [['~r:1', 2]], modes: null });
    expect(hintsOf(['d', 'bytes'])).toEqual({ acks: [], modes: null });
  });

  it('carries whose input it is, its seq and "part":"more" to the owner; old entries still read', () => {
    const messages: InputMessage[] = [
      { type: 'input', data: 'paste', writer: 'Xq3v9k2LmZ8pQ1sT4wYb', seq: 7, more: true },
      { type: 'input', data: 'k', writer: '~r:1' },
      { type: 'input', data: 'old' },
    ];
    for (const message of messages) expect(decodeInput(encodeInput(message))).toEqual(message);
    expect(decodeInput(['t', 'i', 'd', 'x', 's', 'nope'])).toEqual({ type: 'input', data: 'x' });
  });
});
