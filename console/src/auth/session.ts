import { ApiError, NetworkError, requestJson } from '../api/http.js';
import type { SignInAnswer, User } from '../api/types.js';

/**
 * Who is signed in, and their tokens (docs/console.md#tokens).
 *
 * - The **access token** lives in memory only. Its expiry is counted on this device's clock from
 *   `expires_in`, so a phone whose clock is off does not matter.
 * - The **refresh token** is kept in `sessionStorage` as well: a reload, or a phone browser
 *   discarding the tab in the background, does not sign the person out, while closing the tab
 *   does, and no other tab or site can read it. It never goes into a URL or a cookie.
 * - A refresh is single-flight: the API client, the terminal and the logs share one.
 * - A refresh the server refuses (401/403) signs out, like the mobile app. A refresh that gets no
 *   answer (offline) keeps the session, so a phone on a bad network stays signed in.
 */

const REFRESH_KEY = 'devpocket.refresh_token';
/** Refresh this long before the access token expires. */
const EXPIRY_MARGIN_MS = 30_000;

export type RefreshOutcome = 'refreshed' | 'signed-out' | 'unreachable';

export interface SessionChange {
  user: User | null;
  /** Why the person was signed out without asking, when that happened. */
  reason: string | null;
}

function readStoredRefreshToken(): string | null {
  try {
    return sessionStorage.getItem(REFRESH_KEY);
  } catch {
    return null;
  }
}

function storeRefreshToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(REFRESH_KEY, token);
    else sessionStorage.removeItem(REFRESH_KEY);
  } catch {
    // Storage may be unavailable (private mode quotas): the session then lasts as long as the page.
  }
}

/** Why a person finds themselves signed out: the server's detail, with what to do when it does not say. */
export function signedOutReason(detail: string): string {
  return /sign in/i.test(detail) ? detail : `${detail.replace(/\.$/, '')}. Sign in again.`;
}

export class Session {
  private access: { token: string; expiresAt: number } | null = null;
  private refreshToken: string | null = readStoredRefreshToken();
  private refreshing: Promise<RefreshOutcome> | null = null;
  private readonly listeners = new Set<(change: SessionChange) => void>();
  user: User | null = null;

  get signedIn(): boolean {
    return this.user !== null;
  }

  onChange(listener: (change: SessionChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** At start-up: a refresh token kept by this tab signs the person in again. */
  async restore(): Promise<RefreshOutcome | 'none'> {
    if (!this.refreshToken) return 'none';
    return this.refresh();
  }

  async signIn(usernameOrEmail: string, password: string): Promise<void> {
    const answer = await requestJson<SignInAnswer>('POST', '/auth/login', { body: { username_or_email: usernameOrEmail, password } });
    this.accept(answer);
  }

  /** Collects the tokens of a finished "Sign in with Google" with the one-time code from the fragment. */
  async signInWithGoogleCode(code: string): Promise<void> {
    this.accept(await requestJson<SignInAnswer>('POST', '/auth/google/web/exchange', { body: { code } }));
  }

  async register(fields: { username: string; email: string; password: string; full_name: string | null }): Promise<void> {
    const answer = await requestJson<SignInAnswer>('POST', '/auth/register', { body: fields });
    this.accept(answer);
  }

  /** Ends the session on the server (best effort) and forgets the tokens. */
  async signOut(): Promise<void> {
    // An expired access token is refreshed first, so that the server ends the session for real.
    const token = await this.accessToken().catch(() => null);
    this.forget(null);
    if (token) await requestJson('POST', '/auth/logout', { token }).catch(() => undefined);
  }

  /** A valid access token, refreshed first when it expires within the margin; null when signed out. */
  async accessToken(): Promise<string | null> {
    if (this.access && this.access.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return this.access.token;
    if (!this.refreshToken) return null;
    const outcome = await this.refresh();
    if (outcome === 'unreachable') throw new NetworkError(new Error('refresh failed'));
    return outcome === 'refreshed' && this.access ? this.access.token : null;
  }

  /** Exchanges the refresh token for a new pair (once, however many callers ask at the same time). */
  refresh(): Promise<RefreshOutcome> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async doRefresh(): Promise<RefreshOutcome> {
    const refreshToken = this.refreshToken;
    if (!refreshToken) return 'signed-out';
    try {
      this.accept(await requestJson<SignInAnswer>('POST', '/auth/refresh', { body: { refresh_token: refreshToken } }));
      return 'refreshed';
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 422)) {
        this.forget(signedOutReason(error.detail));
        return 'signed-out';
      }
      return 'unreachable';
    }
  }

  private accept(answer: SignInAnswer): void {
    const wasSignedIn = this.signedIn;
    this.access = { token: answer.access_token, expiresAt: Date.now() + answer.expires_in * 1000 };
    this.refreshToken = answer.refresh_token;
    storeRefreshToken(answer.refresh_token);
    this.user = answer.user;
    if (!wasSignedIn) this.emit({ user: this.user, reason: null });
  }

  /** Forgets everything; `reason` tells the person why when they did not ask for it. */
  forget(reason: string | null): void {
    const wasSignedIn = this.signedIn || this.refreshToken !== null;
    this.access = null;
    this.refreshToken = null;
    storeRefreshToken(null);
    this.user = null;
    if (wasSignedIn) this.emit({ user: null, reason });
  }

  private emit(change: SessionChange): void {
    for (const listener of [...this.listeners]) listener(change);
  }
}

/** What the server's Google callback put in the fragment: the one-time code, or why the sign-in was refused. */
export type GoogleReturn = { code: string } | { error: string };

/**
 * The server's Google callback result in the fragment (`#google_code=…`, or `#google_error=<reason>`
 * when Google or the server refused), removed from the address (and so from the history entry)
 * before anything else runs; null when absent.
 */
export function takeGoogleReturn(): GoogleReturn | null {
  const code = /^#google_code=([A-Za-z0-9_-]+)$/.exec(window.location.hash)?.[1];
  const error = /^#google_error=(.+)$/.exec(window.location.hash)?.[1];
  if (!code && !error) return null;
  window.history.replaceState(window.history.state, '', `${window.location.pathname}${window.location.search}`);
  return code ? { code } : { error: readableReason(error ?? '') };
}

/** The reason as sent (URI-encoded text), or a plain sentence when it does not decode. */
function readableReason(encoded: string): string {
  try {
    return decodeURIComponent(encoded).slice(0, 300);
  } catch {
    return 'The Google sign-in did not complete; try again';
  }
}
