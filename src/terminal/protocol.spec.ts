import { CLIENT_ID_PATTERN, parseClientMessage } from './protocol.js';

const parse = (frame: unknown): ReturnType<typeof parseClientMessage> => parseClientMessage(Buffer.from(JSON.stringify(frame)), false);

describe('the terminal protocol', () => {
  it("parses today's messages exactly as before: no new field appears", () => {
    expect(parse({ type: 'input', data: 'ls\r' })).toEqual({ ok: true, message: { type: 'input', data: 'ls\r' } });
    expect(parse({ type: 'ping', timestamp: 1 })).toEqual({ ok: true, message: { type: 'ping' } });
    expect(parse({ type: 'resume', offset: 5 })).toEqual({ ok: true, message: { type: 'resume', offset: 5 } });
  });

  it('parses input seq and part, and received', () => {
    expect(parse({ type: 'input', data: 'a', seq: 3, part: 'more' })).toEqual({
      ok: true,
      message: { type: 'input', data: 'a', seq: 3, more: true },
    });
    expect(parse({ type: 'received', offset: 1234 })).toEqual({ ok: true, message: { type: 'received', offset: 1234 } });
  });

  it('refuses bad values of the new fields', () => {
    for (const frame of [
      { type: 'input', data: 'a', seq: 0 },
      { type: 'input', data: 'a', seq: 1.5 },
      { type: 'input', data: 'a', seq: '2' },
      { type: 'input', data: 'a', part: 'last' },
      { type: 'received', offset: -1 },
      { type: 'received' },
    ])
      expect(parse(frame).ok).toBe(false);
  });

  it('accepts client_ids of 16 to 64 URL-safe characters only', () => {
    expect(CLIENT_ID_PATTERN.test('Xq3v9k2LmZ8pQ1sT')).toBe(true);
    expect(CLIENT_ID_PATTERN.test('a'.repeat(64))).toBe(true);
    for (const bad of ['short', 'a'.repeat(65), 'has space in it!!', 'slash/slash/slash/']) expect(CLIENT_ID_PATTERN.test(bad)).toBe(false);
  });
});
