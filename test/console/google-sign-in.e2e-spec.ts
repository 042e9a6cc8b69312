import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page, Response } from 'playwright-core';
import { createTestDatabase } from '../support/database.js';
import { LocalGoogleOAuthServer } from '../support/google.js';
import { ServerProcess, testServerEnv } from '../support/server-process.js';
import { createTestApp, type TestApp } from '../support/test-app.js';
import { ConsoleBrowser, unexpected } from './console-page.js';

/**
 * The console's "Sign in with Google" (docs/auth.md#google-sign-in-in-the-browser) in Debian's
 * Chromium: the built server (dist/, `npm run build`) as its own process, logging JSON lines at
 * info, against a local stand-in for Google's OAuth endpoints (test/support/google.ts).
 */

interface SignInAnswer {
  access_token: string;
  refresh_token: string;
  user: { id: string; email: string; username: string };
}

describe('Sign in with Google in the console', () => {
  const database = createTestDatabase('google_web');
  const scratch = mkdtempSync(join(tmpdir(), 'devpocket-google-web-'));
  let google: LocalGoogleOAuthServer;
  let server: ServerProcess;
  let baseUrl: string;
  let browser: ConsoleBrowser;

  beforeAll(async () => {
    google = await LocalGoogleOAuthServer.start();
    server = new ServerProcess({ ...testServerEnv(database, join(scratch, 'data')), ...google.env });
    baseUrl = await server.listening();
    browser = await ConsoleBrowser.launch();
  }, 120_000);
  afterEach(() => browser?.closeContexts());
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await google?.close();
    await database.drop();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  /** Clicks the button on a fresh sign-in page and returns the first response whose URL is `awaited`. */
  const pressGoogleButton = async (awaited: (url: string) => boolean): Promise<{ page: Page; response: Response; problems: string[] }> => {
    const { page, problems } = await browser.open(`${baseUrl}/sign-in`);
    const button = page.getByRole('link', { name: 'Sign in with Google' });
    await button.waitFor({ timeout: 15_000 });
    const answered = page.waitForResponse((response) => awaited(response.url()));
    await button.click();
    return { page, response: await answered, problems };
  };

  /** Starts a sign-in without a browser: the redirect to Google, and the state and cookie it set. */
  const startSignIn = async (): Promise<{ authorization: URL; state: string; cookie: string; status: number }> => {
    const start = await fetch(`${baseUrl}/api/v1/auth/google/web`, { redirect: 'manual' });
    const authorization = new URL(start.headers.get('location') ?? '');
    const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    return { authorization, state: authorization.searchParams.get('state') ?? '', cookie, status: start.status };
  };

  /** Clicks the button on a fresh page and returns the tokens the console collected, once the environments show. */
  const signInWithGoogle = async (): Promise<{ page: Page; answer: SignInAnswer; problems: string[] }> => {
    const { page, response, problems } = await pressGoogleButton((url) => url.endsWith('/api/v1/auth/google/web/exchange'));
    expect(response.status()).toBe(200);
    const answer = (await response.json()) as SignInAnswer;
    await page.getByRole('heading', { name: 'Environments' }).waitFor({ timeout: 15_000 });
    return { page, answer, problems };
  };

  const me = async (accessToken: string): Promise<{ id: string; email: string }> => {
    const res = await fetch(`${baseUrl}/api/v1/users/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as { id: string; email: string };
  };

  it('signs in from the button, lands on the environments, and keeps the tokens out of the URL and the logs', async () => {
    google.identity = { sub: 'g-console-1', email: 'console.person@example.com', name: 'Console Person' };
    const { page, answer, problems } = await signInWithGoogle();
    await page.screenshot({ path: join('test', 'artifacts', 'console', 'google-sign-in.png') });

    expect(answer.user.email).toBe('console.person@example.com');
    expect((await me(answer.access_token)).id).toBe(answer.user.id);
    expect(page.url()).toBe(`${baseUrl}/`);
    expect(page.url()).not.toContain('google_code');
    expect(unexpected(problems)).toEqual([]);

    // Every request line of the flow is in the log; no token, and Google's code only redacted.
    const lines = server.stdout.split('\n').filter((line) => line.includes('/api/v1/auth/google/web'));
    expect(lines.some((line) => line.includes('"url":"/api/v1/auth/google/web/callback?code=[REDACTED]'))).toBe(true);
    expect(lines.some((line) => line.includes('"url":"/api/v1/auth/google/web/exchange"'))).toBe(true);
    const everything = server.stdout + server.stderr;
    for (const secret of [answer.access_token, answer.refresh_token, ...google.issuedCodes, LocalGoogleOAuthServer.CLIENT_SECRET]) {
      expect(everything).not.toContain(secret);
    }
  });

  it('signs the same Google account into the same DevPocket account the second time', async () => {
    google.identity = { sub: 'g-console-2', email: 'twice@example.com' };
    const first = await signInWithGoogle();
    const second = await signInWithGoogle();
    expect(second.answer.user.id).toBe(first.answer.user.id);
    expect(second.answer.refresh_token).not.toBe(first.answer.refresh_token);
  });

  it('links to the existing account with the same email', async () => {
    const registered = await fetch(`${baseUrl}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'has_password', email: 'has.password@example.com', password: 'Passw0rd-long', full_name: null }),
    });
    expect(registered.status).toBe(201);
    const account = (await registered.json()) as SignInAnswer;
    google.identity = { sub: 'g-console-linked', email: 'has.password@example.com' };
    const { answer } = await signInWithGoogle();
    expect(answer.user.id).toBe(account.user.id);
    expect(answer.user.username).toBe('has_password');
  });

  it('refuses a callback whose state is not the one this browser was sent with', async () => {
    const { authorization, state, cookie, status } = await startSignIn();
    expect(status).toBe(302);
    expect(authorization.origin).toBe(google.baseUrl);
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    expect(cookie).toMatch(/^dp_google_web=/);

    const callback = (query: string, headers: Record<string, string>) =>
      fetch(`${baseUrl}/api/v1/auth/google/web/callback?${query}`, { redirect: 'manual', headers });
    const before = google.tokenRequests;
    const forged = await callback(`code=anything&state=${state}x`, { cookie });
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { detail: string }).detail).toBe('Refused the Google sign-in: the state does not match');
    const noCookie = await callback(`code=anything&state=${state}`, {});
    expect(noCookie.status).toBe(403);
    const tampered = await callback(`code=anything&state=${state}`, { cookie: `${cookie.slice(0, -2)}xx` });
    expect(tampered.status).toBe(403);
    expect(google.tokenRequests).toBe(before);
  });

  it('brings a browser whose sign-in was cancelled at Google back to the sign-in view with the reason', async () => {
    google.denies = true;
    try {
      const { page, response: callback, problems } = await pressGoogleButton((url) => url.includes('/api/v1/auth/google/web/callback'));
      expect(callback.status()).toBe(303);
      expect(callback.headers().location).toBe(
        `/sign-in#google_error=${encodeURIComponent('The Google sign-in was cancelled or refused')}`,
      );
      await page.getByText('The Google sign-in was cancelled or refused').waitFor({ timeout: 15_000 });
      expect(page.url()).toBe(`${baseUrl}/sign-in`);
      await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      expect(unexpected(problems)).toEqual([]);
    } finally {
      google.denies = false;
    }
    // A client that asks for JSON still gets the error body.
    const { state, cookie } = await startSignIn();
    const refused = await fetch(`${baseUrl}/api/v1/auth/google/web/callback?error=access_denied&state=${state}`, {
      redirect: 'manual',
      headers: { cookie, accept: 'application/json' },
    });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { detail: string }).detail).toBe('The Google sign-in was cancelled or refused');
  });

  it('takes a one-time code once', async () => {
    google.identity = { sub: 'g-console-3', email: 'once@example.com' };
    const { page } = await browser.open(`${baseUrl}/sign-in`);
    // Follow the flow without the console's script collecting the code, to replay it.
    const start = await page.request.get(`${baseUrl}/api/v1/auth/google/web`, { maxRedirects: 0 });
    const toGoogle = await page.request.get(start.headers().location ?? '', { maxRedirects: 0 });
    const back = await page.request.get(toGoogle.headers().location ?? '', { maxRedirects: 0 });
    expect(back.status()).toBe(303);
    const code = /#google_code=(.+)$/.exec(back.headers().location ?? '')?.[1] ?? '';
    const exchange = () =>
      fetch(`${baseUrl}/api/v1/auth/google/web/exchange`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code }),
      });
    expect((await exchange()).status).toBe(200);
    const again = await exchange();
    expect(again.status).toBe(400);
    expect(((await again.json()) as { code: string }).code).toBe('google_web_code_invalid');
  });
});

describe('Sign in with Google when no web client is configured', () => {
  let app: TestApp;
  let browser: ConsoleBrowser;
  beforeAll(async () => {
    app = await createTestApp();
    browser = await ConsoleBrowser.launch();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  }, 60_000);

  it('answers 404 with a clear detail and the console shows no button', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/auth/google/web'],
      ['GET', '/api/v1/auth/google/web/callback?code=x&state=y'],
    ] as const) {
      const res = await fetch(`${app.baseUrl}${path}`, { method, redirect: 'manual' });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/not configured on this server \(GOOGLE_WEB_CLIENT_ID\)/);
    }
    const status = await fetch(`${app.baseUrl}/api/v1/auth/google/web/status`);
    expect(await status.json()).toEqual({ enabled: false });

    const { page } = await browser.open(`${app.baseUrl}/sign-in`);
    const answered = page.waitForResponse((response) => response.url().endsWith('/auth/google/web/status'));
    await page.reload();
    expect((await answered).status()).toBe(200);
    await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
    expect(await page.locator('[data-slot="google-sign-in"]').isHidden()).toBe(true);
  });
});
