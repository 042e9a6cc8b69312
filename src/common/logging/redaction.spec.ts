import { redactUrl } from './redaction.js';

describe('redactUrl', () => {
  it.each([
    ['/api/v1/ws/terminal/abc?token=eyJ.abc.def', '/api/v1/ws/terminal/abc?token=[REDACTED]'],
    ['/x?page=2&access_token=a&refresh_token=b', '/x?page=2&access_token=[REDACTED]&refresh_token=[REDACTED]'],
    ['/x?TOKEN=a#frag', '/x?TOKEN=[REDACTED]#frag'],
    ['/x?tokens=a', '/x?tokens=a'],
    ['/x?mytoken=a', '/x?mytoken=a'],
    ['/plain/path', '/plain/path'],
  ])('%s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});
