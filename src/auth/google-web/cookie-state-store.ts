import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

/** The cookie that carries one authorization request's state handle and PKCE verifier, for the callback only. */
export const STATE_COOKIE = 'dp_google_web';
export const CALLBACK_PATH = '/api/v1/auth/google/web/callback';
/** How long a person may take at Google's consent screen. */
const STATE_TTL_SECONDS = 600;

type StoreCallback = (error: Error | null, handle?: string) => void;
type VerifyCallback = (error: Error | null, verifier: string | false, info?: { message: string }) => void;

const base64url = /^[A-Za-z0-9_-]+$/;

/** The value of `name` in a Cookie header, or null. */
export function cookieValue(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return null;
}

/**
 * passport-oauth2's state store for `state: true, pkce: true`, without server sessions: the
 * `state` sent to Google is a random handle, and the handle with the PKCE code verifier travels
 * in an HTTP-only, SameSite=Lax cookie scoped to the callback path, signed with a key derived from
 * JWT_SECRET. The callback succeeds only when Google sends back the state this browser's cookie
 * names: a forged callback (login CSRF) or a replayed one fails. Stateless, so it works across
 * replicas; the cookie is cleared when it is checked, so each authorization request is used once.
 */
export class CookieStateStore {
  private readonly key: Buffer;

  constructor(
    jwtSecret: string,
    private readonly secureCookie: (req: Request) => boolean,
  ) {
    this.key = createHmac('sha256', jwtSecret).update('devpocket google-web state').digest();
  }

  /** Called by the strategy with PKCE on (arity 5). */
  store(req: Request, verifier: string, _state: unknown, _meta: unknown, callback: StoreCallback): void {
    const handle = randomBytes(24).toString('base64url');
    const payload = `${handle}.${verifier}`;
    this.setCookie(req, `${payload}.${this.mac(payload)}`, STATE_TTL_SECONDS);
    callback(null, handle);
  }

  /** Called on the callback (arity 3): hands the PKCE verifier to the token request, or refuses. */
  verify(req: Request, providedState: unknown, callback: VerifyCallback): void {
    const cookie = cookieValue(req.headers.cookie, STATE_COOKIE);
    if (cookie !== null) this.setCookie(req, '', 0);
    const refused = (message: string): void => callback(null, false, { message });
    if (cookie === null) return refused('no sign-in was started in this browser (or it took longer than 10 minutes)');
    const [handle, verifier, mac] = cookie.split('.');
    if (!handle || !verifier || !mac || !base64url.test(mac) || !this.sameText(mac, this.mac(`${handle}.${verifier}`))) {
      return refused('the sign-in cookie is not genuine');
    }
    if (typeof providedState !== 'string' || !this.sameText(providedState, handle)) return refused('the state does not match');
    callback(null, verifier);
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }

  private sameText(a: string, b: string): boolean {
    const left = Buffer.from(a);
    const right = Buffer.from(b);
    return left.length === right.length && timingSafeEqual(left, right);
  }

  private setCookie(req: Request, value: string, maxAgeSeconds: number): void {
    const res = req.res as Response;
    const attributes = [`Path=${CALLBACK_PATH}`, 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAgeSeconds}`];
    if (this.secureCookie(req)) attributes.push('Secure');
    res.append('Set-Cookie', `${STATE_COOKIE}=${value}; ${attributes.join('; ')}`);
  }
}
