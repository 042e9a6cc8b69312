import { createEnvironmentsApp, EnvironmentsApp } from '../support/environments.js';

/**
 * Preview requests count against the client's global budget (RATE_LIMIT_MAX per
 * RATE_LIMIT_TTL_SECONDS per IP), the one the API's requests and WebSocket upgrades share: over
 * it, 429 with Retry-After, before anything is looked up. Clients are told apart by
 * X-Forwarded-For through a trusted loopback proxy.
 */
describe('web previews: rate limit', () => {
  let app: EnvironmentsApp;
  const preview = '/preview/0123456789abcdef01234567/8000/';

  beforeAll(async () => {
    app = await createEnvironmentsApp({ env: { RATE_LIMIT_MAX: '3', TRUSTED_PROXIES: 'loopback' } });
  }, 120_000);
  afterAll(() => app?.close(), 120_000);

  const from = (client: string, path = preview): Promise<Response> =>
    fetch(`${app.baseUrl}${path}`, { headers: { 'x-forwarded-for': client }, redirect: 'manual' });

  it('answers 429 with Retry-After once a client’s budget is spent, on previews and on the API alike', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await from('203.0.113.7')).status);
    expect(statuses).toEqual([404, 404, 404]);
    const over = await from('203.0.113.7');
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await over.json()).toMatchObject({ code: 'rate_limited' });
    // One budget: the API refuses this client too; another client is untouched.
    expect((await from('203.0.113.7', '/api/v1/templates')).status).toBe(429);
    expect((await from('203.0.113.8')).status).toBe(404);
  });

  it('counts API requests against previews: a client that spent its budget on the API is refused a preview', async () => {
    for (let i = 0; i < 3; i += 1) await from('203.0.113.9', '/api/v1/templates');
    expect((await from('203.0.113.9')).status).toBe(429);
  });
});
