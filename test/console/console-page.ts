import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, BrowserContextOptions, chromium, Page } from 'playwright-core';
import type { TestAccount } from '../support/accounts.js';
import { launchChromium } from '../support/browser.js';
import { createEnvironmentsApp, EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import type { TestAppOptions } from '../support/test-app.js';

export const ARTIFACTS = join('test', 'artifacts', 'console');
export const PHONE: BrowserContextOptions = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
export const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 720 } };

export interface Watched {
  page: Page;
  /** Console errors and uncaught exceptions (CSP violations are console errors). */
  problems: string[];
}

/**
 * Debian's Chromium for the console's browser tests: pages in fresh contexts, watched for errors,
 * and the console's sign-in. `closeContexts` after each test, `close` after the file.
 */
export class ConsoleBrowser {
  private readonly contexts: BrowserContext[] = [];

  private constructor(readonly browser: Browser) {}

  static async launch(): Promise<ConsoleBrowser> {
    mkdirSync(ARTIFACTS, { recursive: true });
    return new ConsoleBrowser(await launchChromium(chromium));
  }

  /** A fresh context (no cookies, no storage) on `baseUrl + path`. */
  async open(url: string, options: BrowserContextOptions = DESKTOP): Promise<Watched> {
    const context = await this.browser.newContext(options);
    this.contexts.push(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(url);
    return { page, problems };
  }

  async closeContexts(): Promise<void> {
    await Promise.all(this.contexts.splice(0).map((context) => context.close()));
  }

  async close(): Promise<void> {
    await this.closeContexts();
    await this.browser.close();
  }
}

export async function signInAttempt(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Signs in on the console's sign-in form and waits until the form is gone. */
export async function signIn(page: Page, account: TestAccount): Promise<void> {
  await signInAttempt(page, account.username, account.password);
  await page.locator('form.auth').waitFor({ state: 'detached', timeout: 15_000 });
}

/** Chromium reports every 4xx answer as a console error; the ones a test provokes on purpose are not problems. */
export function unexpected(problems: string[], ...statuses: number[]): string[] {
  return problems.filter(
    (problem) =>
      !/WebSocket connection to .* failed/.test(problem) &&
      !statuses.some((status) => problem.includes(`Failed to load resource: the server responded with a status of ${status}`)),
  );
}

/**
 * The application (local runtime) and Chromium for one test file, set up by vitest hooks: the
 * browser's contexts closed after each test, both closed after the file. Read them in tests and
 * later hooks (`bed.app`, `bed.browser`).
 */
export function consoleTestBed(options: TestAppOptions = {}): { app: EnvironmentsApp; browser: ConsoleBrowser } {
  const bed = {} as { app: EnvironmentsApp; browser: ConsoleBrowser };
  beforeAll(async () => {
    bed.app = await createEnvironmentsApp(options);
    bed.browser = await ConsoleBrowser.launch();
  }, 120_000);
  afterEach(() => bed.browser?.closeContexts());
  afterAll(async () => {
    await bed.browser?.close();
    await bed.app?.close();
  }, 120_000);
  return bed;
}

// ---- the terminal page ------------------------------------------------------------------------

/** The visible rows of the terminal (xterm.js's DOM renderer). */
export const terminalScreen = async (page: Page): Promise<string> =>
  (await page.locator('.xterm-rows').innerText()).replace(/\u00a0/g, ' ');

/** Waits until the terminal's visible rows match `pattern`. */
export const waitForScreen = (page: Page, pattern: RegExp, timeoutMs = 15_000): Promise<void> =>
  eventually(
    async () => {
      const text = await terminalScreen(page);
      if (!pattern.test(text)) throw new Error(`${pattern} not on screen:\n${text.trimEnd().split('\n').slice(-8).join('\n')}`);
    },
    timeoutMs,
    50,
  );

/** Waits until the terminal page shows the connection state `state` (`connected`, `reconnecting`…). */
export const waitForState = (page: Page, state: string, timeoutMs = 20_000): Promise<void> =>
  page.locator(`[data-role="connection-state"][data-state="${state}"]`).waitFor({ timeout: timeoutMs });

/**
 * Records, from now on, every connection state the terminal page shows, however briefly (a
 * reconnection after the server closed the socket can last a few milliseconds: too short to
 * catch by polling); `seen(state)` waits until the page has shown `state` since.
 */
export async function recordStates(page: Page): Promise<{ seen(state: string, timeoutMs?: number): Promise<void> }> {
  const name = JSON.stringify(`states-${Math.random().toString(36).slice(2)}`);
  await page.evaluate(`(() => {
    const pill = document.querySelector('[data-role="connection-state"]');
    const states = (window[${name}] = []);
    new MutationObserver(() => states.push(pill.getAttribute('data-state'))).observe(pill, { attributes: true, attributeFilter: ['data-state'] });
  })()`);
  return {
    seen: (state, timeoutMs = 20_000) =>
      eventually(
        async () => {
          const states = await page.evaluate<string[]>(`window[${name}]`);
          if (!states.includes(state)) throw new Error(`the page has not shown ${state} (only ${states.join(', ') || 'nothing'})`);
        },
        timeoutMs,
        50,
      ),
  };
}

/** Opens a terminal page at `url`, signs in, waits until it is connected and gives the terminal the focus. */
export async function openTerminalAt(
  browser: ConsoleBrowser,
  url: string,
  account: TestAccount,
  options?: BrowserContextOptions,
): Promise<Watched> {
  const watched = await browser.open(url, options);
  await signIn(watched.page, account);
  await waitForState(watched.page, 'connected');
  await watched.page.locator('.xterm-screen').click();
  return watched;
}
