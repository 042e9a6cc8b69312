import { join } from 'node:path';
import { BrowserContextOptions, Page } from 'playwright-core';
import { TerminalHub } from '../../src/terminal/terminal.hub.js';
import { randomIp, type TestAccount } from '../support/accounts.js';
import type { EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import {
  ARTIFACTS,
  ConsoleBrowser,
  consoleTestBed,
  openTerminalAt,
  PHONE,
  recordStates,
  signIn,
  signInAttempt,
  terminalScreen as screen,
  unexpected,
  waitForScreen,
  waitForState,
  Watched,
} from './console-page.js';

/**
 * The browser console (docs/console.md) in Debian's Chromium, against the real application on the
 * local runtime: real tmux sessions, real WebSockets. Screenshots go to test/artifacts/console/.
 * Nothing here measures time: every wait is for something the page shows, with a timeout.
 */

describe('the browser console', () => {
  const bed = consoleTestBed();
  let app: EnvironmentsApp;
  let browser: ConsoleBrowser;
  beforeAll(() => {
    ({ app, browser } = bed);
  });

  // ---- helpers --------------------------------------------------------------------------------

  const open = (path: string, options?: BrowserContextOptions): Promise<Watched> => browser.open(`${app.baseUrl}${path}`, options);

  const connectionState = (page: Page): Promise<string | null> => page.locator('[data-role="connection-state"]').getAttribute('data-state');

  /** Everything in the terminal (scrollback and screen), read through the console's own "Select" sheet. */
  const bufferText = async (page: Page): Promise<string> => {
    await page.locator('[data-action="select"]').click();
    const text = await page.locator('.sheet-text').inputValue();
    await page.locator('[data-action="close-sheet"]').click();
    return text;
  };

  /** Types into the terminal (xterm.js's hidden textarea has the focus) and presses Enter. */
  const run = async (page: Page, command: string): Promise<void> => {
    await page.keyboard.type(command);
    await page.keyboard.press('Enter');
  };

  const openTerminal = (account: TestAccount, environmentId: string, options?: BrowserContextOptions): Promise<Watched> =>
    openTerminalAt(browser, `${app.baseUrl}/environments/${environmentId}/terminal`, account, options);

  /** The sign-in session (`sid`) of a page, read from the refresh token the console keeps for its tab. */
  const signInSession = async (page: Page): Promise<string> => {
    const token = await page.evaluate<string | null>("sessionStorage.getItem('devpocket.refresh_token')");
    if (!token) throw new Error('the page holds no refresh token');
    return (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { sid: string }).sid;
  };

  /** Cuts the server's side of every terminal socket the page's sign-in opened (no close frame: a network drop). */
  const dropTerminalsOf = async (page: Page, environmentId: string): Promise<number> => {
    const sid = await signInSession(page);
    const session = app.app.get(TerminalHub).session(environmentId);
    let dropped = 0;
    for (const client of [...(session?.clients ?? [])]) {
      if (client.sessionId !== sid) continue;
      client.ws.terminate();
      dropped += 1;
    }
    return dropped;
  };

  // ---- serving ----------------------------------------------------------------------------------

  describe('serving', () => {
    it('serves index.html at / and the console pages: never cached, with a CSP that allows only this origin', async () => {
      for (const path of [
        '/',
        '/sign-in',
        '/register',
        '/environments',
        '/environments/0123456789abcdef01234567/terminal',
        '/environments/x/logs/',
      ]) {
        const res = await fetch(`${app.baseUrl}${path}`, { redirect: 'manual' });
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
        expect(res.headers.get('cache-control')).toBe('no-cache');
        const csp = res.headers.get('content-security-policy') ?? '';
        expect(csp).toContain("default-src 'none'");
        expect(csp).toContain("script-src 'self';");
        expect(csp).toMatch(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ wss:\/\/127\.0\.0\.1:\d+/);
        expect(csp).not.toContain('unsafe-eval');
        expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
        const html = await res.text();
        const nonce = /nonce="([^"]+)"/.exec(html)?.[1];
        expect(nonce).toMatch(/^[A-Za-z0-9+/]{22}==$/);
        expect(csp).toContain(`style-src 'self' 'nonce-${nonce}'`);
        expect(html).not.toMatch(/<script>|<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
      }
      // a fresh nonce per response
      const nonces = await Promise.all([1, 2].map(async () => /nonce="([^"]+)"/.exec(await (await fetch(`${app.baseUrl}/`)).text())?.[1]));
      expect(nonces[0]).not.toBe(nonces[1]);
    });

    it('serves content-hashed assets with long cache headers', async () => {
      const html = await (await fetch(`${app.baseUrl}/`)).text();
      const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1]);
      expect(assets).toHaveLength(3);
      for (const asset of assets) {
        expect(asset).toMatch(/-[A-Za-z0-9_-]{8,}\.(js|css|svg)$/);
        const res = await fetch(`${app.baseUrl}${asset}`);
        expect(res.status, asset).toBe(200);
        expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      }
      const missing = await fetch(`${app.baseUrl}/assets/console-missing.js`);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { code: string }).code).toBe('not_found');
    });

    it('an unknown page: the console (status 404) for a browser, the JSON 404 for everything else; the API prefixes stay JSON', async () => {
      const html = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
      const page = await fetch(`${app.baseUrl}/nothing`, { headers: html });
      expect(page.status).toBe(404);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      for (const [path, headers] of [
        ['/nothing', {}],
        ['/nothing', { accept: 'application/json' }],
        ['/api/v1/nothing', html],
        ['/docs/missing/page', html],
        ['/health/nope', html],
      ] as const) {
        const res = await fetch(`${app.baseUrl}${path}`, { headers });
        expect(res.status, path).toBe(404);
        expect(res.headers.get('content-type'), path).toContain('application/json');
      }
      const post = await fetch(`${app.baseUrl}/`, { method: 'POST' });
      expect(post.status).toBe(405);
      expect(post.headers.get('allow')).toBe('GET, HEAD');
    });

    it('shows "page not found" for an unknown page, and Swagger UI still renders at /docs', async () => {
      const { page, problems } = await open('/no/such/page');
      await page.getByRole('heading', { name: 'Page not found' }).waitFor({ timeout: 15_000 });
      await page.goto(`${app.baseUrl}/docs`);
      await page.getByText('/health/ready').first().waitFor({ timeout: 15_000 });
      expect(await page.locator('.opblock').count()).toBeGreaterThanOrEqual(3);
      expect(unexpected(problems, 404)).toEqual([]); // the unknown page itself answered 404
    });
  });

  // ---- accounts -------------------------------------------------------------------------------

  describe('accounts', () => {
    it("signs in (showing the server's detail on failure), survives a reload, and signs out", async () => {
      const account = await app.register();
      const { page, problems } = await open('/');
      await page.waitForURL(/\/sign-in$/);
      await page.getByLabel('Username or email').fill(account.username);
      await page.getByLabel('Password').fill('Wrong-password-1');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'Incorrect username/email or password' }).waitFor({ timeout: 15_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'sign-in-failed.png') });

      await signIn(page, account);
      await page.locator('[data-role="user"]', { hasText: account.username }).waitFor();
      await page.waitForURL(`${app.baseUrl}/`);
      await page.reload();
      await page.locator('[data-role="user"]', { hasText: account.username }).waitFor({ timeout: 15_000 });
      expect(page.url()).toBe(`${app.baseUrl}/`);

      // The access token is never in a URL or in storage; only this tab keeps the refresh token.
      expect(await page.evaluate<number>('localStorage.length')).toBe(0);
      expect(await page.evaluate<string>('Object.keys(sessionStorage).join()')).toBe('devpocket.refresh_token');

      const pageRefreshToken = await page.evaluate<string>("sessionStorage.getItem('devpocket.refresh_token')");
      await page.locator('[data-action="sign-out"]').click();
      await page.waitForURL(/\/sign-in$/);
      expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
      // The session really ended on the server: its refresh token is refused.
      const refresh = await app.request('POST', '/api/v1/auth/refresh', { body: { refresh_token: pageRefreshToken } });
      expect(refresh.status).toBe(401);
      expect(unexpected(problems, 401)).toEqual([]);
    });

    it('shows the lock (423) with when it ends, and a 429 with its Retry-After on the button', async () => {
      const wrong = (account: TestAccount, ip: string): Promise<Response> =>
        app.request('POST', '/api/v1/auth/login', { ip, body: { username_or_email: account.username, password: 'Wrong-password-1' } });
      const locked = await app.register();
      for (let i = 0; i < 5; i += 1) await wrong(locked, randomIp());
      const { page, problems } = await open('/sign-in');
      await signInAttempt(page, locked.username, locked.password);
      await page
        .getByRole('alert')
        .filter({ hasText: /Too many failed sign-ins; the account is locked for \d+ more minute\(s\) \(until .+\)/ })
        .waitFor();

      // 20 attempts per 15 minutes for one account, from any address: the next one is a 429.
      const limited = await app.register();
      for (let i = 0; i < 20; i += 1) await wrong(limited, randomIp());
      await signInAttempt(page, limited.username, limited.password);
      await page
        .getByRole('alert')
        .filter({ hasText: /Too many requests; try again in \d+ s/ })
        .waitFor();
      await page.getByRole('button', { name: /^Sign in \(\d+ s\)$/ }).waitFor();
      expect(await page.getByRole('button', { name: /^Sign in/ }).isDisabled()).toBe(true);
      await page.screenshot({ path: join(ARTIFACTS, 'sign-in-rate-limited.png') });
      // The limit may be the account's: another name may try at once.
      await page.getByLabel('Username or email').fill('someone_else');
      expect(await page.getByRole('button', { name: 'Sign in', exact: true }).isEnabled()).toBe(true);
      expect(unexpected(problems, 423, 429)).toEqual([]);
    }, 90_000);

    it('registers a new account and signs it in; a taken username shows the detail', async () => {
      const taken = await app.register();
      const { page, problems } = await open('/register');
      const fill = async (username: string): Promise<void> => {
        await page.getByLabel('Username').fill(username);
        await page.getByLabel('Email').fill(`${username}@example.com`);
        await page.getByLabel('Password', { exact: true }).fill('Console-Passw0rd');
        await page.getByRole('button', { name: 'Create account' }).click();
      };
      await fill(taken.username);
      await page.getByRole('alert').filter({ hasText: 'An account with this username already exists' }).waitFor({ timeout: 15_000 });
      const username = `web_${Date.now().toString(36)}`;
      await fill(username);
      await page.locator('[data-role="user"]', { hasText: username }).waitFor({ timeout: 15_000 });
      await page.getByRole('heading', { name: 'New environment' }).waitFor();
      expect(unexpected(problems, 409)).toEqual([]);
    });

    it('refreshes once on a 401 and signs out when the refresh is refused', async () => {
      const account = await app.register();
      const { page, problems } = await open('/');
      await signIn(page, account);
      await page.getByRole('heading', { name: 'Environments' }).waitFor();
      // A password change elsewhere ends the page's session: its next poll gets 401, and so does the refresh.
      const changed = await app.request('POST', '/api/v1/auth/change-password', {
        token: account.tokens.access_token,
        body: { current_password: account.password, new_password: 'Changed-Passw0rd' },
      });
      expect(changed.status).toBe(200);
      await page.waitForURL(/\/sign-in$/, { timeout: 20_000 });
      await page.getByRole('alert').filter({ hasText: 'The session has ended; sign in again' }).waitFor();
      expect(unexpected(problems, 401)).toEqual([]);
    });
  });

  // ---- environments ---------------------------------------------------------------------------

  describe('environments', () => {
    it('creates an environment from python and sees it reach running; the plan limit is shown clearly', async () => {
      const account = await app.account('free');
      const { page, problems } = await open('/');
      await signIn(page, account);
      await page.getByLabel('Template').selectOption('python');
      await page.getByLabel('Name').fill('Console Project');
      await page.getByRole('button', { name: 'Create' }).click();
      const card = page.locator('li.environment', { hasText: 'Console Project' });
      await card.waitFor({ timeout: 15_000 });
      await card.locator('[data-role="status"]', { hasText: /^running$/ }).waitFor({ timeout: 120_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'environments.png'), fullPage: true });

      await page.getByLabel('Name').fill('One too many');
      await page.getByRole('button', { name: 'Create' }).click();
      await page.getByRole('alert').filter({ hasText: 'Your Free plan allows 1 environment' }).waitFor({ timeout: 15_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'plan-limit.png'), fullPage: true });

      // logs follow over the WebSocket
      await card.getByRole('link', { name: 'Logs' }).click();
      await page.locator('[data-role="logs-state"][data-state="following"]').waitFor({ timeout: 15_000 });
      await page.locator('pre.logs', { hasText: '[runtime]' }).waitFor({ timeout: 15_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'logs.png') });
      await page.getByRole('link', { name: 'Back to environments' }).click();

      // stop, then delete with a confirmation
      await card.getByRole('button', { name: 'Stop' }).click();
      await card.locator('[data-role="status"]', { hasText: /^stopped$/ }).waitFor({ timeout: 60_000 });
      await card.getByRole('button', { name: 'Delete' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
      await card.getByRole('button', { name: 'Delete' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
      await page.locator('li.environment', { hasText: 'Console Project' }).waitFor({ state: 'detached', timeout: 60_000 });
      expect(unexpected(problems, 403)).toEqual([]);
    }, 240_000);
  });

  // ---- terminal -------------------------------------------------------------------------------

  describe('terminal', () => {
    let owner: TestAccount & { id: string };
    let env: EnvironmentBody;

    beforeAll(async () => {
      owner = await app.account('pro');
      env = await app.createRunning(owner, { name: 'Console Terminal', template: 'python' });
    }, 180_000);

    it('types echo hello and sees hello; a second browser on the same environment sees the same screen', async () => {
      const a = await openTerminal(owner, env.id);
      await run(a.page, 'echo hello');
      await waitForScreen(a.page, /^hello\s*$/m);

      const b = await openTerminal(owner, env.id);
      await waitForScreen(b.page, /^hello\s*$/m);
      await run(b.page, 'echo shared-$((6*7))');
      await waitForScreen(a.page, /^shared-42\s*$/m);
      await waitForScreen(b.page, /^shared-42\s*$/m);
      await eventually(async () => expect(await screen(b.page)).toBe(await screen(a.page)), 10_000);
      await a.page.screenshot({ path: join(ARTIFACTS, 'terminal-a.png') });
      await b.page.screenshot({ path: join(ARTIFACTS, 'terminal-b.png') });
      expect(a.problems).toEqual([]);
      expect(b.problems).toEqual([]);
    }, 60_000);

    it('resumes after the server drops the socket: nothing lost, nothing repeated, what was typed during the drop arrives', async () => {
      // A small window, so that the output missed during the drop is more than one screen: a redraw would lose lines.
      const small: BrowserContextOptions = { viewport: { width: 900, height: 420 } };
      const flaky = await openTerminal(owner, env.id, small);
      const steady = await openTerminal(owner, env.id, small);
      await run(flaky.page, 'clear');
      await run(flaky.page, 'for i in $(seq 1 150); do echo n$i; sleep 0.02; done; echo loop-$((50+50))-done');
      await waitForScreen(flaky.page, /^n5\s*$/m);
      // The console reconnects at once when the server closes: "reconnecting" may show for a moment only.
      const dropped = await recordStates(flaky.page);
      expect(await dropTerminalsOf(flaky.page, env.id)).toBe(1);
      await dropped.seen('reconnecting');
      await waitForState(flaky.page, 'connected');
      await waitForScreen(flaky.page, /^loop-100-done\s*$/m, 30_000);
      await waitForScreen(steady.page, /^loop-100-done\s*$/m, 30_000);

      const numbered = (text: string): number[] => [...text.matchAll(/^n(\d+)\s*$/gm)].map((match) => Number(match[1]));
      const flakyText = await bufferText(flaky.page);
      const fromLoop = (text: string): string => text.slice(text.lastIndexOf('for i in $(seq 1 150)'));
      const numbers = numbered(flakyText);
      expect(numbers[0]).toBe(1);
      expect(numbers.at(-1)).toBe(150);
      expect(numbers.every((n, i) => i === 0 || n > numbers[i - 1])).toBe(true); // nothing repeated
      // The client that never dropped received the same stream: the same text (so nothing lost either).
      expect(fromLoop(flakyText)).toBe(fromLoop(await bufferText(steady.page)));

      // Typed while the socket is down: held, then sent once the terminal is back.
      await flaky.page.locator('.xterm-screen').click();
      const droppedAgain = await recordStates(flaky.page);
      expect(await dropTerminalsOf(flaky.page, env.id)).toBe(1);
      await run(flaky.page, 'echo typed-$((2+3))');
      await droppedAgain.seen('reconnecting');
      const stateAfterTyping = await connectionState(flaky.page);
      await waitForScreen(flaky.page, /^typed-5\s*$/m);
      await waitForScreen(steady.page, /^typed-5\s*$/m);
      const after = await bufferText(flaky.page);
      expect([...after.matchAll(/^typed-5\s*$/gm)]).toHaveLength(1);
      expect(fromLoop(after)).toBe(fromLoop(await bufferText(steady.page)));
      // (When the machine is slow the reconnection may win the race with the typing; the text still arrives once.)
      expect(['reconnecting', 'connecting', 'connected']).toContain(stateAfterTyping);
      await flaky.page.screenshot({ path: join(ARTIFACTS, 'terminal-resumed.png') });
      expect(unexpected(flaky.problems)).toEqual([]);
      expect(steady.problems).toEqual([]);
    }, 120_000);

    it('on a phone (390×844): the key bar sends Ctrl-C, a flood does not freeze the page, and it fits 360 px', async () => {
      const phone = await openTerminal(owner, env.id, PHONE);
      const { page } = phone;
      const keyBar = page.locator('.key-bar');
      await keyBar.waitFor();
      for (const key of [
        'escape',
        'ctrl',
        'alt',
        'tab',
        'arrow-left',
        'arrow-up',
        'arrow-down',
        'arrow-right',
        'pipe',
        'tilde',
        'slash',
        'dash',
      ]) {
        await keyBar.locator(`[data-key="${key}"]`).waitFor();
      }
      await run(page, 'sleep 1000');
      await waitForScreen(page, /sleep 1000\s*$/m);
      const ctrl = keyBar.locator('[data-key="ctrl"]');
      await ctrl.tap();
      expect(await ctrl.getAttribute('aria-pressed')).toBe('true');
      await page.keyboard.type('c');
      expect(await ctrl.getAttribute('aria-pressed')).toBe('false'); // one tap: one key
      await waitForScreen(page, /\^C/);
      await run(page, 'echo $((7*191))');
      await waitForScreen(page, /^1337\s*$/m);
      await page.screenshot({ path: join(ARTIFACTS, 'phone-ctrl-c.png') });

      // A flood: the page keeps answering, and Ctrl-C from the key bar stops it.
      await run(page, 'yes flood-line');
      await waitForScreen(page, /^flood-line\s*$/m);
      const before = await page.locator('[data-role="font-size"]').innerText();
      await page.locator('[data-action="font-larger"]').tap();
      await eventually(async () => expect(await page.locator('[data-role="font-size"]').innerText()).not.toBe(before), 15_000);
      await ctrl.tap();
      await page.keyboard.type('c');
      await run(page, 'clear; echo after-flood-$((1+1))');
      await waitForScreen(page, /^after-flood-2\s*$/m, 30_000);
      expect(await connectionState(page)).toBe('connected');
      await page.locator('[data-action="font-smaller"]').tap();

      // Layout: nothing wider than the screen, the key bar inside it, in portrait at 390 and 360 px.
      for (const width of [390, 360]) {
        await page.setViewportSize({ width, height: 740 });
        await eventually(async () =>
          expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(width),
        );
        const bar = await keyBar.boundingBox();
        expect(bar && bar.y + bar.height).toBeLessThanOrEqual(740);
        await page.screenshot({ path: join(ARTIFACTS, `phone-${width}.png`) });
      }

      // Paste without clipboard access: the fallback field sends its text.
      await page.locator('[data-action="paste"]').tap();
      await page.locator('.sheet-text').fill('echo pasted-$((3*3))');
      await page.locator('.sheet').getByRole('button', { name: 'Send' }).tap();
      await page.keyboard.press('Enter');
      await waitForScreen(page, /^pasted-9\s*$/m);
      expect(phone.problems).toEqual([]);
    }, 120_000);

    it('after the environment stops, waits, and resumes its terminal when it runs again', async () => {
      const { page, problems } = await openTerminal(owner, env.id);
      const stopped = await app.json('POST', `/api/v1/environments/${env.id}/stop`, { token: owner.tokens.access_token });
      expect(stopped.status).toBe(202);
      await waitForState(page, 'waiting', 30_000);
      await page.locator('[data-action="start"]').waitFor({ timeout: 30_000 });
      await page.screenshot({ path: join(ARTIFACTS, 'terminal-waiting.png') });
      await page.locator('[data-action="start"]').click();
      await waitForState(page, 'connected', 90_000);
      await page.locator('.xterm-screen').click();
      await run(page, 'echo back-$((20+1))');
      await waitForScreen(page, /^back-21\s*$/m);
      expect(unexpected(problems)).toEqual([]);
    }, 150_000);
  });
});
