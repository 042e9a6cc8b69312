import { FakeClock } from '../../test/support/fake-clock.js';
import { PreviewTokens } from './preview-tokens.js';

describe('PreviewTokens', () => {
  const clock = new FakeClock();
  const tokens = new PreviewTokens({ jwtSecret: 'a-secret-of-enough-length-for-the-test-only-0123456789' } as never, clock);
  const claims = { kind: 'grant' as const, sub: 'u1', sid: 's1', env: 'e1', port: 8000 };

  it('accepts its own token of the right kind until it expires', () => {
    const token = tokens.sign(claims, 60_000);
    expect(tokens.verify(token, 'grant')).toMatchObject(claims);
    expect(tokens.verify(token, 'cookie')).toBeNull();
    clock.advance(60_001);
    expect(tokens.verify(token, 'grant')).toBeNull();
  });

  it('refuses a changed body, a changed signature, another key, and garbage', () => {
    const token = tokens.sign(claims, 60_000);
    const [body, mac] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims, port: 9000, exp: clock.nowMs() + 60_000 })).toString('base64url');
    expect(tokens.verify(`${forged}.${mac}`, 'grant')).toBeNull();
    expect(tokens.verify(`${body}.${mac.slice(0, -2)}AA`, 'grant')).toBeNull();
    const other = new PreviewTokens({ jwtSecret: 'another-secret-of-enough-length-for-the-test-0123456789' } as never, clock);
    expect(other.verify(token, 'grant')).toBeNull();
    for (const junk of ['', 'a', 'a.b.c', '.x', 'eyJ9.abc']) expect(tokens.verify(junk, 'grant')).toBeNull();
  });
});
