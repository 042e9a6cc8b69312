import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { testRedisPrefix, testRedisUrl } from '../support/redis.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

type Upgrade = { upgraded: true; closeCode: number } | { upgraded: false; status: number; retryAfter: string | undefined; body: unknown };

/** One WebSocket upgrade to `path`: whether it was upgraded (and how the server then closed it), or the HTTP answer instead. */
function upgrade(baseUrl: string, path: string): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}${path}`);
    socket.once('unexpected-response', (_request, response: IncomingMessage) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () =>
        resolve({
          upgraded: false,
          status: response.statusCode ?? 0,
          retryAfter: response.headers['retry-after'],
          body: text ? (JSON.parse(text) as unknown) : null,
        }),
      );
    });
    socket.once('close', (code) => resolve({ upgraded: true, closeCode: code }));
    socket.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

/** An upgrade of a logs socket without a token: the socket opens, then the gateway closes it with 4001. It still counts. */
const LOGS = '/api/v1/ws/logs/6651f0c2a4b1c2d3e4f5a6b7';

describe('WebSocket upgrades count against the client rate limit', () => {
  describe('one process', () => {
    let t: TestApp;
    beforeAll(async () => (t = await createTestApp({ env: { RATE_LIMIT_MAX: '3' } })));
    afterAll(() => t.close());

    it('answers the upgrade over the budget with 429 and Retry-After, shared with HTTP requests; unknown paths are not counted', async () => {
      expect(await upgrade(t.baseUrl, '/api/v1/ws/nothing-here')).toMatchObject({ upgraded: false, status: 404 });
      for (let i = 0; i < 3; i += 1) expect(await upgrade(t.baseUrl, LOGS)).toEqual({ upgraded: true, closeCode: 4001 });
      const refused = await upgrade(t.baseUrl, LOGS);
      expect(refused).toMatchObject({ upgraded: false, status: 429, body: { code: 'rate_limited' } });
      expect(Number((refused as { retryAfter: string }).retryAfter)).toBeGreaterThan(0);
      expect((refused as { body: { detail: string } }).body.detail).toMatch(/^Too many requests; try again in \d+ s$/);
      // One budget for both: the HTTP API refuses this client too.
      expect((await fetch(`${t.baseUrl}/api/v1/plans`)).status).toBe(429);
    });
  });

  describe('replicas sharing a Redis', () => {
    const apps: TestApp[] = [];
    beforeAll(async () => {
      const env = { RATE_LIMIT_MAX: '4', REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: testRedisPrefix('upgrades') };
      apps.push(await createTestApp({ env }), await createTestApp({ env }));
    });
    afterAll(() => Promise.all(apps.map((app) => app.close())));

    it('counts the upgrades of one client on every replica together', async () => {
      const [one, two] = apps;
      expect(await upgrade(one.baseUrl, LOGS)).toMatchObject({ upgraded: true });
      expect(await upgrade(two.baseUrl, LOGS)).toMatchObject({ upgraded: true });
      expect(await upgrade(one.baseUrl, LOGS)).toMatchObject({ upgraded: true });
      expect(await upgrade(two.baseUrl, LOGS)).toMatchObject({ upgraded: true });
      expect(await upgrade(one.baseUrl, LOGS)).toMatchObject({ upgraded: false, status: 429 });
      expect(await upgrade(two.baseUrl, LOGS)).toMatchObject({ upgraded: false, status: 429 });
    });
  });
});
