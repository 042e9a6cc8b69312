import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import type { Tokens } from '../support/accounts.js';
import { eventually } from '../support/eventually.js';
import { testRedisUrl } from '../support/redis.js';
import { ApiClient, ClusterAccount, ServerCluster } from '../support/server-cluster.js';
import { TerminalTestClient } from '../support/terminal-client.js';

/** Rejects when `promise` has not settled within `ms`: for closes that must come "at once", without asserting timings. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A request from one fixed client address (the servers trust loopback proxies), as a phone behind one NAT would send. */
async function from(ip: string, api: ApiClient, method: string, path: string, body?: unknown, token?: string): Promise<Response> {
  const headers: Record<string, string> = { 'x-forwarded-for': ip };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  return fetch(`${api.baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** A logs WebSocket that received its backlog (so it is past its sign-in check), and how it closed. */
async function openLogs(api: ApiClient, environmentId: string, token: string): Promise<{ socket: WebSocket; closed: Promise<number> }> {
  const socket = new WebSocket(`${api.baseUrl.replace('http', 'ws')}/api/v1/ws/logs/${environmentId}?token=${token}&lines=5`);
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  await within(new Promise((resolve) => socket.once('message', resolve)), 15_000, 'the first log line');
  return { socket, closed };
}

/**
 * Three replicas of the built server on one database and one Redis (each cluster under its own key
 * prefix): rate limits, sign-outs, account changes and environment status reach every replica.
 */
describe('replicas sharing a Redis', () => {
  const TEST_TIMEOUT_MS = 90_000;
  let cluster: ServerCluster;
  let apis: ApiClient[];
  const clients: TerminalTestClient[] = [];
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    cluster = ServerCluster.create('replicas', { redisUrl: testRedisUrl() });
    apis = (await Promise.all([cluster.start(), cluster.start(), cluster.start()])).map(({ api }) => api);
  }, 120_000);

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    for (const socket of sockets.splice(0)) socket.terminate();
  });

  afterAll(() => cluster?.close(), 60_000);

  /** Signs in again (a second session of the same account), through `api`. */
  const signIn = async (api: ApiClient, account: ClusterAccount): Promise<Tokens> => {
    const res = await api.json<Tokens>('POST', '/api/v1/auth/login', {
      body: { username_or_email: account.username, password: account.password },
    });
    expect(res.status).toBe(200);
    return res.body;
  };

  /** An admin made with the command line, signed in through `api`. */
  const signInAsNewAdmin = async (api: ApiClient): Promise<Tokens> => {
    const username = `admin_${randomBytes(4).toString('hex')}`;
    await cluster.cli(['create-admin', '--username', username, '--email', `${username}@example.com`, '--password', 'Adm1n-Passw0rd']);
    return signIn(api, { username, email: '', password: 'Adm1n-Passw0rd', tokens: {} as Tokens });
  };

  const me = (api: ApiClient, token: string) =>
    api.json<{ code?: string; subscription_plan?: string; role?: string }>('GET', '/api/v1/auth/me', { token });

  it(
    'counts sign-in attempts per account on all replicas together',
    async () => {
      // An account name nobody registered: every attempt is a wrong password (401), none locks anything in the database.
      const login = `nobody_${randomBytes(4).toString('hex')}`;
      const attempt = (api: ApiClient) =>
        api.json<{ code: string }>('POST', '/api/v1/auth/login', { body: { username_or_email: login, password: 'Wrong-passw0rd' } });
      // login-account: 20 per 15 minutes, whatever the client address (each request here has its own).
      for (let i = 0; i < 20; i += 1) expect((await attempt(apis[i % 3])).status).toBe(401);
      for (const api of apis) expect(await attempt(api)).toMatchObject({ status: 429, body: { code: 'rate_limited' } });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'counts registrations per client address on all replicas together',
    async () => {
      const ip = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
      const register = (api: ApiClient) => {
        const suffix = randomBytes(4).toString('hex');
        return from(ip, api, 'POST', '/api/v1/auth/register', {
          username: `reg_${suffix}`,
          email: `reg.${suffix}@example.com`,
          password: `Passw0rd-${suffix}`,
        });
      };
      // register-ip: 20 per hour; split between two replicas, the third one refuses the 21st too.
      for (let i = 0; i < 20; i += 1) expect((await register(apis[i % 2])).status).toBe(201);
      const refused = await register(apis[2]);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await register(apis[0])).status).toBe(429);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'closes the terminal and the logs socket opened on other replicas when the session signs out on one (4001)',
    async () => {
      const [a, b, c] = apis;
      const account = await a.register();
      const env = await a.createRunning(account);
      const other = await signIn(a, account);

      const terminal = await TerminalTestClient.connect(b.baseUrl, env.id, { token: account.tokens.access_token });
      const kept = await TerminalTestClient.connect(b.baseUrl, env.id, { token: other.access_token });
      clients.push(terminal, kept);
      await terminal.waitForFrame((f) => f.type === 'welcome', 20_000);
      await kept.waitForFrame((f) => f.type === 'welcome', 20_000);
      const logs = await openLogs(c, env.id, account.tokens.access_token);
      sockets.push(logs.socket);
      // Both replicas have the session cached now.
      expect((await me(b, account.tokens.access_token)).status).toBe(200);
      expect((await me(c, account.tokens.access_token)).status).toBe(200);

      expect((await a.json('POST', '/api/v1/auth/logout', { token: account.tokens.access_token })).status).toBe(200);
      // Refused on every replica from the moment the sign-out answered.
      expect(await me(b, account.tokens.access_token)).toMatchObject({ status: 401, body: { code: 'session_revoked' } });
      expect(await me(c, account.tokens.access_token)).toMatchObject({ status: 401, body: { code: 'session_revoked' } });
      expect((await within(terminal.closed, 5_000, 'the terminal on another replica')).code).toBe(4001);
      expect(await within(logs.closed, 5_000, 'the logs socket on another replica')).toBe(4001);
      // The account's other session keeps its terminal.
      kept.run('echo still-here-$((6*7))');
      await kept.waitForScreen(/still-here-42/);
      await a.deleteAndWait({ ...account, tokens: { ...account.tokens, access_token: other.access_token } }, env.id);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses a deactivated account on every replica at once, and applies role and plan changes everywhere',
    async () => {
      const [a, b, c] = apis;
      const admin = await signInAsNewAdmin(a);
      const account = await b.register();
      const token = account.tokens.access_token;
      const { body: user } = await me(b, token);
      const id = (user as { id: string }).id;
      // Cached on every replica: what each knows of the user and the session was read once.
      for (const api of apis) expect((await me(api, token)).body).toMatchObject({ role: 'user', subscription_plan: 'free' });
      expect((await c.json('GET', '/api/v1/admin/users', { token })).status).toBe(403);

      // A role change through one replica: the next request on another is an admin's.
      expect((await a.json('PATCH', `/api/v1/admin/users/${id}`, { token: admin.access_token, body: { role: 'admin' } })).status).toBe(200);
      expect((await c.json('GET', '/api/v1/admin/users', { token })).status).toBe(200);
      // A plan change through another.
      expect(
        (await c.json('PATCH', `/api/v1/admin/users/${id}`, { token: admin.access_token, body: { subscription_plan: 'pro' } })).status,
      ).toBe(200);
      expect((await me(b, token)).body).toMatchObject({ subscription_plan: 'pro', role: 'admin' });
      // The admin command line publishes its changes too.
      await cluster.cli(['set-plan', account.username, 'team']);
      for (const api of apis) expect((await me(api, token)).body).toMatchObject({ subscription_plan: 'team' });

      expect((await a.json('PATCH', `/api/v1/admin/users/${id}`, { token: admin.access_token, body: { role: 'user' } })).status).toBe(200);
      expect((await a.json('PATCH', `/api/v1/admin/users/${id}`, { token: admin.access_token, body: { is_active: false } })).status).toBe(
        200,
      );
      for (const api of [b, c, a]) {
        const refused = await me(api, token);
        expect(refused.status).toBe(401);
        expect(['session_revoked', 'user_inactive']).toContain(refused.body.code);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'serves a template changed through one replica from every replica at once (the template cache is invalidated everywhere)',
    async () => {
      const [a, b, c] = apis;
      const admin = await signInAsNewAdmin(a);
      const account = await a.register();
      const env = await a.createRunning(account);
      const previewPorts = async (api: ApiClient): Promise<number[]> => {
        const res = await api.json<{ id: string; previews?: { port: number }[] }[]>('GET', '/api/v1/environments', {
          token: account.tokens.access_token,
        });
        expect(res.status).toBe(200);
        return res.body.find((listed) => listed.id === env.id)?.previews?.map((preview) => preview.port) ?? [];
      };
      const setPorts = async (ports: { name: string; port: number; protocol: string }[]) =>
        expect((await a.json('PUT', '/api/v1/templates/debian', { token: admin.access_token, body: { ports } })).status).toBe(200);
      // Read (and cached) on b and c first.
      for (const api of [b, c]) expect(await previewPorts(api)).toEqual([]);
      await setPorts([{ name: 'web', port: 8080, protocol: 'TCP' }]);
      // Well within the cache's 60 s safety net: only the invalidation can make this pass.
      for (const api of [b, c]) await eventually(async () => expect(await previewPorts(api)).toEqual([8080]), 5_000);
      await setPorts([]);
      for (const api of [b, c]) await eventually(async () => expect(await previewPorts(api)).toEqual([]), 5_000);
      await a.deleteAndWait(account, env.id);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'tells terminal clients on every replica that their environment stops',
    async () => {
      const [a, b] = apis;
      const account = await a.register();
      const env = await a.createRunning(account);
      const watching = await TerminalTestClient.connect(b.baseUrl, env.id, { token: account.tokens.access_token });
      clients.push(watching);
      await watching.waitForFrame((f) => f.type === 'welcome', 20_000);

      expect((await a.json('POST', `/api/v1/environments/${env.id}/stop`, { token: account.tokens.access_token })).status).toBeLessThan(
        300,
      );
      // The stop ran on another replica: its status reaches this client through Redis.
      await watching.waitForFrame((f) => f.type === 'status' && f.phase === 'stopping', 20_000);
      expect((await within(watching.closed, 30_000, 'the terminal of a stopped environment')).code).toBe(4009);
      await a.waitForPhase(account, env.id, 'stopped');
      await eventually(async () =>
        expect((await a.json('DELETE', `/api/v1/environments/${env.id}`, { token: account.tokens.access_token })).status).toBeLessThan(300),
      );
      await a.waitForPhase(account, env.id, 'terminated');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'stops cleanly with its Redis connections (SIGTERM: exit code 0)',
    async () => {
      const { server } = await cluster.start();
      expect((await server.stop()).code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
