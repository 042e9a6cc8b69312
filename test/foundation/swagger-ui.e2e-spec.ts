import { Browser, chromium } from 'playwright-core';
import { createTestApp, TestApp } from '../support/test-app.js';
import { launchChromium } from '../support/browser.js';

/** Swagger UI must render for real in a browser, under the server's Content-Security-Policy. */
describe('Swagger UI in Chromium', () => {
  let t: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    t = await createTestApp();
    browser = await launchChromium(chromium);
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it.each(['/docs', '/docs/'])('renders the operations at %s without CSP violations', async (path) => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${t.baseUrl}${path}`);
    await page.getByText('/health/ready').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('.opblock').count()).toBeGreaterThanOrEqual(3);
    expect(await page.getByRole('button', { name: /Authorize/ }).count()).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  });
});
