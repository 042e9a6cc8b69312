import { onTestFailed } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Tokens } from '../support/accounts.js';
import { eventually } from '../support/eventually.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { ApiClient, ClusterAccount, ServerCluster } from '../support/server-cluster.js';
import { TerminalTestClient } from '../support/terminal-client.js';

interface ReadyBody {
  detail?: string;
  code?: string;
  details?: Record<string, { status: string; [key: string]: unknown }>;
}

/**
 * Two replicas and a Redis of this file's own, which goes away and comes back: what needs it says
 * so (503 with the reason), the rest keeps working, and everything recovers without a restart.
 */
describe('replicas when Redis goes away and comes back', () => {
  const TEST_TIMEOUT_MS = 150_000;
  let redis: TestRedis;
  let cluster: ServerCluster;
  let a: ApiClient;
  let b: ApiClient;
  const clients: TerminalTestClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    cluster = ServerCluster.create('redis_outage', { redisUrl: redis.url });
    [{ api: a }, { api: b }] = await Promise.all([cluster.start(), cluster.start()]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await cluster?.close();
    await redis?.close();
  }, 60_000);

  const forgotPassword = (api: ApiClient) =>
    api.json<{ code?: string; detail?: string }>('POST', '/api/v1/auth/forgot-password', {
      body: { email: `nobody.${randomBytes(4).toString('hex')}@example.com` },
    });
  const ready = (api: ApiClient) => api.json<ReadyBody>('GET', '/health/ready');
  const signIn = async (api: ApiClient, account: ClusterAccount): Promise<Tokens> => {
    const res = await api.json<Tokens>('POST', '/api/v1/auth/login', {
      body: { username_or_email: account.username, password: account.password },
    });
    expect(res.status).toBe(200);
    return res.body;
  };
  const attach = async (api: ApiClient, environmentId: string, token: string): Promise<TerminalTestClient> => {
    const client = await TerminalTestClient.connect(api.baseUrl, environmentId, { token });
    clients.push(client);
    await client.waitForFrame((f) => f.type === 'welcome', 20_000);
    return client;
  };

  it(
    'answers 503 where a shared limit is needed, is not ready, keeps terminals working, and recovers when Redis is back',
    async () => {
      // A failure here depends on timing between processes: what the replicas logged is what explains it.
      onTestFailed(() => {
        for (const [index, server] of cluster.servers.entries())
          console.log(
            `replica ${index} logged:\n${server.stdout
              .split('\n')
              .filter((line) => !/RouterExplorer|RoutesResolver|InstanceLoader/.test(line))
              .join('\n')}\n${server.stderr}`,
          );
      });
      const account = await a.register();
      const env = await a.createRunning(account);
      const second = await signIn(a, account);
      const third = await signIn(a, account);
      const terminal = await attach(b, env.id, account.tokens.access_token);
      const doomed = await attach(b, env.id, second.access_token);
      terminal.run('echo before-outage-$((5*5))');
      await terminal.waitForScreen(/before-outage-25/);
      expect((await forgotPassword(a)).status).toBe(202);
      expect((await ready(b)).status).toBe(200);
      expect((await ready(b)).body.details?.redis).toMatchObject({ status: 'up', subscribed: true });

      await redis.stop();

      // A route whose own limit must hold across replicas refuses, with the reason and when to retry.
      await eventually(async () => {
        for (const api of [a, b]) {
          const refused = await forgotPassword(api);
          expect(refused.status).toBe(503);
          expect(refused.body.code).toBe('shared_state_unavailable');
        }
      }, 10_000);
      const refused = await fetch(`${a.baseUrl}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.7' },
        body: JSON.stringify({ username_or_email: account.username, password: account.password }),
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      // What needs no shared state keeps working: authentication reads the database, the global budget counts locally.
      expect((await a.json('GET', '/api/v1/auth/me', { token: account.tokens.access_token })).status).toBe(200);
      expect((await b.json('GET', `/api/v1/environments/${env.id}`, { token: account.tokens.access_token })).status).toBe(200);
      // Refresh too: a phone whose refresh failed would sign its user out.
      const refreshed = await b.json<Tokens>('POST', '/api/v1/auth/refresh', { body: { refresh_token: third.refresh_token } });
      expect(refreshed.status).toBe(200);
      // The terminal already open keeps working, and a new one can connect.
      terminal.run('echo during-outage-$((6*7))');
      await terminal.waitForScreen(/during-outage-42/);
      const late = await attach(a, env.id, account.tokens.access_token);
      late.run('echo late-$((7*7))');
      await late.waitForScreen(/late-49/);

      // A sign-out now: refused at once everywhere (every replica reads the database), though b cannot hear of it yet.
      expect((await a.json('POST', '/api/v1/auth/logout', { token: second.access_token })).status).toBe(200);
      expect((await b.json<{ code: string }>('GET', '/api/v1/auth/me', { token: second.access_token })).body.code).toBe('session_revoked');

      // Readiness says so once the failures last (3 checks in a row, 5 s apart).
      await eventually(
        async () => {
          const res = await ready(b);
          expect(res.status).toBe(503);
          expect(res.body.code).toBe('not_ready');
          expect(res.body.detail).toMatch(/redis is down: Redis cannot be reached/);
        },
        40_000,
        500,
      );

      await redis.start();

      // Back without a restart: the shared limits answer again, readiness recovers.
      await eventually(async () => {
        for (const api of [a, b]) expect((await forgotPassword(api)).status).toBe(202);
      }, 20_000);
      await eventually(async () => expect((await ready(b)).status).toBe(200), 30_000, 500);
      // The sign-out that b could not hear: found when it is in sync again (or by its periodic re-check), the terminal is closed.
      expect((await doomed.closed).code).toBe(4001);
      // And sign-outs are heard again: one on a closes the terminal open on b.
      expect((await a.json('POST', '/api/v1/auth/logout', { token: account.tokens.access_token })).status).toBe(200);
      expect((await terminal.closed).code).toBe(4001);
      expect((await late.closed).code).toBe(4001);
      await a.deleteAndWait({ ...account, tokens: { ...account.tokens, access_token: third.access_token } }, env.id);
    },
    TEST_TIMEOUT_MS,
  );
});
