import { ProbeModule } from '../support/probe.module.js';
import { createTestApp, TestApp } from '../support/test-app.js';

const hit = (t: TestApp, path: string, headers: Record<string, string> = {}): Promise<number> =>
  fetch(`${t.baseUrl}${path}`, { headers }).then((res) => res.status);

const signIn = (t: TestApp, account: string, forwardedFor: string): Promise<Response> =>
  fetch(`${t.baseUrl}/api/v1/probe/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
    body: JSON.stringify({ account }),
  });

describe('rate limiting', () => {
  describe('without trusted proxies', () => {
    let t: TestApp;
    beforeAll(async () => (t = await createTestApp({ imports: [ProbeModule], env: { RATE_LIMIT_MAX: '5' } })));
    afterAll(() => t.close());

    it('applies the global default per client IP, whatever X-Forwarded-For claims', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i += 1) statuses.push(await hit(t, `/api/v1/probe/items/x${i}`, { 'x-forwarded-for': `203.0.113.${i}` }));
      expect(statuses.slice(0, 5).every((s) => s === 404)).toBe(true);
      expect(statuses[5]).toBe(429);
    });

    it('counts one budget across every route', async () => {
      expect(await hit(t, '/api/v1/plans')).toBe(429);
    });

    it('does not limit health probes', async () => {
      for (let i = 0; i < 8; i += 1) expect(await hit(t, '/health')).toBe(200);
    });
  });

  describe('behind a trusted proxy', () => {
    let t: TestApp;
    beforeAll(async () => (t = await createTestApp({ imports: [ProbeModule], env: { TRUSTED_PROXIES: 'loopback' } })));
    afterAll(() => t.close());

    it('keys per-IP limits on the forwarded client address', async () => {
      expect(await hit(t, '/api/v1/probe/limited', { 'x-forwarded-for': '198.51.100.1' })).toBe(200);
      expect(await hit(t, '/api/v1/probe/limited', { 'x-forwarded-for': '198.51.100.1' })).toBe(200);
      expect(await hit(t, '/api/v1/probe/limited', { 'x-forwarded-for': '198.51.100.1' })).toBe(429);
      expect(await hit(t, '/api/v1/probe/limited', { 'x-forwarded-for': '198.51.100.2' })).toBe(200);
    });

    it('keys per-account limits on the account, across client addresses, case-insensitively', async () => {
      expect((await signIn(t, 'alice', '198.51.100.10')).status).toBe(201);
      expect((await signIn(t, 'ALICE', '198.51.100.11')).status).toBe(201);
      const limited = await signIn(t, 'Alice', '198.51.100.12');
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await signIn(t, 'bob', '198.51.100.12')).status).toBe(201);
    });
  });
});
