import { join } from 'node:path';
import type { EnvironmentBody } from '../support/environments.js';
import { ARTIFACTS, consoleTestBed, signIn, unexpected } from './console-page.js';

/** The console's environment list follows the status WebSocket: changes made elsewhere appear without polling. */
describe('the console’s live environment list', () => {
  const bed = consoleTestBed();

  it('shows an environment created, stopped and deleted through the API, with no GET of the list', async () => {
    const { app, browser } = bed;
    const account = await app.account('free');
    const { page, problems } = await browser.open(`${app.baseUrl}/`);
    await signIn(page, account);
    const listRequests: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'GET' && new URL(request.url()).pathname.replace(/\/$/, '') === '/api/v1/environments')
        listRequests.push(request.url());
    });
    await page.locator('[data-role="status-connection"][data-state="live"]').waitFor({ timeout: 15_000 });

    const token = account.tokens.access_token;
    const created = await app.json<EnvironmentBody>('POST', '/api/v1/environments', {
      token,
      body: { name: 'Made Elsewhere', template: 'debian' },
    });
    expect(created.status).toBe(201);
    const card = page.locator('li.environment', { hasText: 'Made Elsewhere' });
    await card.locator('[data-role="status"]', { hasText: /^running$/ }).waitFor({ timeout: 60_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'live-status.png'), fullPage: true });

    expect((await app.json('POST', `/api/v1/environments/${created.body.id}/stop`, { token })).status).toBeLessThan(300);
    await card.locator('[data-role="status"]', { hasText: /^stopped$/ }).waitFor({ timeout: 60_000 });
    expect((await app.json('DELETE', `/api/v1/environments/${created.body.id}`, { token })).status).toBeLessThan(300);
    await card.waitFor({ state: 'detached', timeout: 60_000 });

    // Everything came over the socket: the list was never asked for over REST.
    expect(listRequests).toEqual([]);
    expect(unexpected(problems)).toEqual([]);
  }, 180_000);
});
