import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { TestAccount } from '../support/accounts.js';
import type { EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import { ConsoleBrowser, consoleTestBed, signIn } from '../console/console-page.js';
import { freePort, startPlainHttpServer, startPreviewServer } from './preview-fixtures.js';

const ARTIFACTS = join('test', 'artifacts', 'previews');
/** Each test drives pages through the proxy: generous, for a machine under load (no timing is asserted). */
const TEST_TIMEOUT_MS = 90_000;

/** What preview-page.html's script could read of the console's origin, and what its WebSocket echo answered. */
interface PageReport {
  localStorage: string;
  sessionStorage: string;
  cookie: string;
  parentConsole: string;
}

/**
 * Web previews in Debian's Chromium: a server started inside a python environment
 * (test/previews/preview_server.py) opened from the console, in both forms, with its WebSocket echo;
 * what its page can read of the console; another user; external_url with no token at all.
 * `*.localhost` resolves to this machine in Chromium, so PREVIEW_DOMAIN=localhost needs no DNS.
 */
describe('web previews in a browser', () => {
  const bed = consoleTestBed({ env: { PREVIEW_DOMAIN: 'localhost' } });
  let app: EnvironmentsApp;
  let browser: ConsoleBrowser;
  let owner: TestAccount & { id: string };
  let env: EnvironmentBody;
  let port: number;
  /** A second declared port, served by `python3 -m http.server`. */
  let plainPort: number;
  /** The console on `localhost` (not 127.0.0.1): the origin whose storage a preview must not reach. */
  let origin: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    ({ app, browser } = bed);
    origin = `http://localhost:${new URL(app.baseUrl).port}`;
    owner = await app.account('free');
    // From debian, whose template declares no port: the ports added here are its first (external_url's) and second.
    env = await app.createRunning(owner, { name: 'Previewed', template: 'debian' });
    port = await freePort();
    plainPort = await freePort();
    const put = await app.json('PUT', `/api/v1/environments/${env.id}`, {
      token: owner.tokens.access_token,
      body: { ports: [port, plainPort] },
    });
    expect(put.status).toBe(200);
    await startPreviewServer(app, env, port);
    await startPlainHttpServer(app, env, plainPort);
  }, 180_000);

  /** Waits for the page of preview-page.html to have run: its heading, its echo, and what it could read. */
  const previewPage = async (page: Page): Promise<PageReport> => {
    try {
      await page.getByRole('heading', { name: 'Hello from the environment' }).waitFor({ timeout: 15_000 });
      await page.locator('#echo', { hasText: 'echo: ping from the page' }).waitFor({ timeout: 15_000 });
    } catch (error) {
      throw new Error(`${page.url()} shows:\n${(await page.content()).slice(0, 1500)}`, { cause: error });
    }
    return JSON.parse(await page.locator('#storage').innerText()) as PageReport;
  };

  it(
    'opens the subdomain form from the console in a new tab: the page, its WebSocket, and none of the console’s storage',
    async () => {
      const { page } = await browser.open(`${origin}/`);
      await signIn(page, owner);
      expect(await page.evaluate(() => sessionStorage.length)).toBeGreaterThan(0);
      const link = page.locator(`li.environment[data-id="${env.id}"] [data-role="preview"][data-port="${port}"]`);
      const [tab] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
      const report = await previewPage(tab);
      expect(new URL(tab.url()).host).toBe(`${port}-${env.id}.localhost:${new URL(origin).port}`);
      expect(tab.url()).not.toContain('devpocket_grant');
      // Another origin: its own empty storage; the preview cookie is HTTP-only; no way back to the console.
      expect(report).toEqual({ localStorage: 'empty', sessionStorage: 'empty', cookie: 'empty', parentConsole: 'none' });
      await tab.screenshot({ path: join(ARTIFACTS, 'subdomain-form.png') });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'path form on the console’s own origin: sandboxed, so its script reads neither storage nor cookies; its WebSocket works',
    async () => {
      const { page } = await browser.open(`${origin}/`);
      await signIn(page, owner);
      await page.evaluate(() => localStorage.setItem('console-secret', 'x'));
      const tab = await page.context().newPage();
      await tab.goto(`${origin}/preview/${env.id}/${port}/?devpocket_token=${owner.tokens.access_token}`);
      const report = await previewPage(tab);
      expect(new URL(tab.url()).pathname).toMatch(new RegExp(`^/preview/${env.id}/${port}/~[\\w-]+\\.[\\w-]+/$`));
      expect(tab.url()).not.toContain('devpocket_token');
      expect(report).toEqual({ localStorage: 'blocked', sessionStorage: 'blocked', cookie: 'blocked', parentConsole: 'none' });
      await tab.screenshot({ path: join(ARTIFACTS, 'path-form.png') });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'serves python3 -m http.server through both forms, opened from the console',
    async () => {
      const { page } = await browser.open(`${origin}/`);
      await signIn(page, owner);
      const link = page.locator(`li.environment[data-id="${env.id}"] [data-role="preview"][data-port="${plainPort}"]`);
      const [tab] = await Promise.all([page.context().waitForEvent('page'), link.click()]);
      await tab.getByRole('heading', { name: 'Served by python3 -m http.server' }).waitFor({ timeout: 15_000 });
      const pathForm = await page.context().newPage();
      await pathForm.goto(`${origin}/preview/${env.id}/${plainPort}/?devpocket_token=${owner.tokens.access_token}`);
      await pathForm.getByRole('heading', { name: 'Served by python3 -m http.server' }).waitFor({ timeout: 15_000 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'answers 404 to another signed-in user and to a browser without the cookie',
    async () => {
      const stranger = await app.account('free');
      for (const url of [
        `${origin}/preview/${env.id}/${port}/?devpocket_token=${stranger.tokens.access_token}`,
        `http://${port}-${env.id}.localhost:${new URL(origin).port}/?devpocket_token=${stranger.tokens.access_token}`,
        `http://${port}-${env.id}.localhost:${new URL(origin).port}/`,
      ]) {
        const { page } = await browser.open('about:blank');
        const response = await page.goto(url);
        expect(response?.status()).toBe(404);
        expect(await page.content()).not.toContain('Hello from the environment');
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'external_url opened with no token at all (as the app’s WebView does) shows the page, and the grant leaves the address',
    async () => {
      const res = await app.json<EnvironmentBody>('GET', `/api/v1/environments/${env.id}`, { token: owner.tokens.access_token });
      // As the app sees it, through the address it uses for the server.
      const external = new URL(res.body.external_url!);
      external.port = new URL(origin).port;
      const { page } = await browser.open(external.href);
      await previewPage(page);
      expect(page.url()).toBe(`http://${port}-${env.id}.localhost:${new URL(origin).port}/`);
      await page.screenshot({ path: join(ARTIFACTS, 'external-url.png') });
    },
    TEST_TIMEOUT_MS,
  );
});
