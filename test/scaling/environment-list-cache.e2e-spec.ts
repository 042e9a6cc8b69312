import type { EnvironmentBody } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import { replicaSuite } from '../support/replica-suite.js';
import type { ApiClient } from '../support/server-cluster.js';
import { TerminalTestClient } from '../support/terminal-client.js';

type Listed = EnvironmentBody & { previews: { port: number }[] };

/**
 * Each replica keeps each user's environment list in memory (EnvironmentListCache, 30 s at most):
 * a change made through one replica, or by an operation running on it, is listed by the other at
 * once, because every write announces itself to every replica (`environment.written`).
 */
describe('the environment list across replicas', () => {
  const TEST_TIMEOUT_MS = 120_000;
  const suite = replicaSuite('env-list-cache', 2);
  /** Well within the cache's 30 s safety net: only the invalidation can make a wait this long pass. */
  const SOON_MS = 5_000;

  const list = async (api: ApiClient): Promise<Listed[]> => {
    const res = await api.json<Listed[]>('GET', '/api/v1/environments', { token: suite.account.tokens.access_token });
    expect(res.status).toBe(200);
    return res.body;
  };
  const send = async (api: ApiClient, method: string, path: string, body?: unknown): Promise<EnvironmentBody> => {
    const res = await api.json<EnvironmentBody>(method, `/api/v1/environments${path}`, { token: suite.account.tokens.access_token, body });
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    return res.body;
  };
  /** What `api` lists of the one environment, by the fields a change shows in. */
  const listed = async (api: ApiClient): Promise<Pick<Listed, 'id' | 'name' | 'phase'> & { ports: number[]; accessed: boolean }> => {
    const environments = await list(api);
    expect(environments).toHaveLength(1);
    const [environment] = environments;
    return {
      id: environment.id,
      name: environment.name,
      phase: environment.phase,
      ports: environment.previews.map((preview) => preview.port),
      accessed: environment.last_accessed !== null,
    };
  };

  it(
    "lists on one replica, at once, what a request or an operation changed through the other",
    async () => {
      const [a, b] = suite.apis;
      // Read (and cached) on b first.
      expect(await list(b)).toEqual([]);

      // Requests answer once every replica was told: b lists the change right after the answer.
      const created = await send(a, 'POST', '', { name: 'Listed', template: 'debian' });
      expect((await listed(b)).id).toBe(created.id);
      // The provisioning finishes in the background on a.
      await a.waitForPhase(suite.account, created.id, 'running');
      await eventually(async () => expect((await listed(b)).phase).toBe('running'), SOON_MS);

      await send(a, 'PUT', `/${created.id}`, { name: 'Renamed', ports: [8080] });
      expect(await listed(b)).toMatchObject({ name: 'Renamed', ports: [8080] });

      // Terminal input (written as the environment's last access, once a minute).
      const terminal = await TerminalTestClient.connect(a.baseUrl, created.id, { token: suite.account.tokens.access_token });
      suite.clients.push(terminal);
      await terminal.waitForFrame((frame) => frame.type === 'welcome', 20_000);
      terminal.input('true\r');
      await eventually(async () => expect((await a.get(suite.account, created.id)).last_accessed).not.toBeNull(), SOON_MS);
      await eventually(async () => expect((await listed(b)).accessed).toBe(true), SOON_MS);
      await terminal.close();

      await send(a, 'POST', `/${created.id}/stop`);
      expect((await listed(b)).phase).toBe('stopping');
      await a.waitForPhase(suite.account, created.id, 'stopped');
      await eventually(async () => expect((await listed(b)).phase).toBe('stopped'), SOON_MS);

      // And the other way round.
      await send(b, 'DELETE', `/${created.id}`);
      expect((await listed(a)).phase).toBe('terminating');
      await b.waitForPhase(suite.account, created.id, 'terminated');
      await eventually(async () => expect((await listed(a)).phase).toBe('terminated'), SOON_MS);
    },
    TEST_TIMEOUT_MS,
  );
});
