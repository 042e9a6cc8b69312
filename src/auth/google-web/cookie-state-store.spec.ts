import type { Request } from 'express';
import { CALLBACK_PATH, CookieStateStore, cookieValue, STATE_COOKIE } from './cookie-state-store.js';

/** A request whose response collects Set-Cookie headers, as Express's `res.append` does. */
function request(cookie?: string, secure = false): { req: Request; setCookies: string[] } {
  const setCookies: string[] = [];
  const res = { append: (name: string, value: string) => (name === 'Set-Cookie' ? setCookies.push(value) : undefined) };
  return { req: { headers: cookie ? { cookie } : {}, res, secure } as unknown as Request, setCookies };
}

const cookieOf = (setCookie: string): string => setCookie.split(';')[0] ?? '';

function started(store: CookieStateStore): { handle: string; cookie: string; setCookie: string } {
  const { req, setCookies } = request();
  let handle = '';
  store.store(req, 'the-pkce-verifier', undefined, {}, (error, value) => {
    expect(error).toBeNull();
    handle = value ?? '';
  });
  const setCookie = setCookies[0] ?? '';
  return { handle, cookie: cookieOf(setCookie), setCookie };
}

function verified(
  store: CookieStateStore,
  cookie: string | undefined,
  state: unknown,
): { outcome: string | false; message?: string; cleared: boolean } {
  const { req, setCookies } = request(cookie);
  let result: { outcome: string | false; message?: string } = { outcome: false };
  store.verify(req, state, (error, verifier, info) => {
    expect(error).toBeNull();
    result = { outcome: verifier, message: info?.message };
  });
  return { ...result, cleared: setCookies.some((value) => value.startsWith(`${STATE_COOKIE}=;`) && value.includes('Max-Age=0')) };
}

describe('CookieStateStore', () => {
  const store = new CookieStateStore('x'.repeat(40), (req) => req.secure);

  it('sends a random state and keeps it with the PKCE verifier in an HTTP-only cookie for the callback only', () => {
    const first = started(store);
    const second = started(store);
    expect(first.handle).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(second.handle).not.toBe(first.handle);
    expect(first.setCookie).toContain(`Path=${CALLBACK_PATH}`);
    expect(first.setCookie).toContain('HttpOnly');
    expect(first.setCookie).toContain('SameSite=Lax');
    expect(first.setCookie).not.toContain('Secure');
  });

  it('hands the verifier back for the matching state, and clears the cookie', () => {
    const { handle, cookie } = started(store);
    expect(verified(store, `other=1; ${cookie}`, handle)).toEqual({ outcome: 'the-pkce-verifier', message: undefined, cleared: true });
  });

  it.each([
    ['another state', (handle: string, cookie: string) => [cookie, `${handle}x`], 'the state does not match'],
    ['no state', (_handle: string, cookie: string) => [cookie, undefined], 'the state does not match'],
    ['no cookie', (handle: string) => [undefined, handle], 'no sign-in was started in this browser'],
    ['a tampered verifier', (handle: string, cookie: string) => [cookie.replace('the-pkce-verifier', 'attacker'), handle], 'not genuine'],
    [
      'a cookie signed with another secret',
      (handle: string) => [started(new CookieStateStore('y'.repeat(40), () => false)).cookie, handle],
      'not genuine',
    ],
  ] as const)('refuses %s', (_name, make, message) => {
    const { handle, cookie } = started(store);
    const [sentCookie, state] = make(handle, cookie);
    const result = verified(store, sentCookie, state);
    expect(result.outcome).toBe(false);
    expect(result.message).toContain(message);
  });

  it('marks the cookie Secure over HTTPS', () => {
    const { req, setCookies } = request(undefined, true);
    store.store(req, 'v', undefined, {}, () => undefined);
    expect(setCookies[0]).toContain('Secure');
  });
});

describe('cookieValue', () => {
  it('finds a cookie among others, keeping = inside the value', () => {
    expect(cookieValue('a=1; b=x=y; c=3', 'b')).toBe('x=y');
    expect(cookieValue(undefined, 'b')).toBeNull();
    expect(cookieValue('ab=1', 'b')).toBeNull();
  });
});
