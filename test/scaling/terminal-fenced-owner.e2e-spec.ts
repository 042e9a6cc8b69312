import { Redis } from 'ioredis';
import { eventually } from '../support/eventually.js';
import { testRedisUrl } from '../support/redis.js';
import { ApiClient, ClusterAccount, ServerCluster } from '../support/server-cluster.js';
import { TerminalTestClient } from '../support/terminal-client.js';

/** How long the stolen lease lives: the owner's renewals find it within a second, then nobody writes until it expires. */
const STOLEN_MS = 4_000;

/**
 * An owner whose lease another replica holds (its renewals were late: a starved machine, a pause)
 * is fenced off. It ends its tmux client and follows the stream instead of dropping its clients:
 * they stay connected, get `reset` and a redraw, and once a replica owns the terminal again it
 * works on, with one tmux client. Here the lease is taken from it by the test, as a replica that
 * then died would have.
 */
describe('an owner fenced off by another replica', () => {
  const TEST_TIMEOUT_MS = 120_000;
  let cluster: ServerCluster;
  let owner: ApiClient;
  let follower: ApiClient;
  let account: ClusterAccount;
  let redis: Redis;
  const clients: TerminalTestClient[] = [];

  beforeAll(async () => {
    cluster = ServerCluster.create('fenced-owner', { redisUrl: testRedisUrl() });
    [{ api: owner }, { api: follower }] = await Promise.all([cluster.start(), cluster.start()]);
    account = await owner.register();
    redis = new Redis(testRedisUrl(), { keyPrefix: cluster.redisKeyPrefix ?? '', lazyConnect: true });
    await redis.connect();
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    redis?.disconnect();
    await cluster?.close();
  }, 60_000);

  const joined = (api: ApiClient, id: string): Promise<TerminalTestClient> =>
    TerminalTestClient.welcomed(api.baseUrl, id, { token: account.tokens.access_token }, (client) => clients.push(client));

  it(
    'keeps its clients: a reset and a redraw, then the terminal goes on with one tmux client',
    async () => {
      const { id } = await owner.createRunning(account);
      // The first client's replica takes the lease and owns the terminal; the other follows.
      const typist = await joined(owner, id);
      const watcher = await joined(follower, id);
      typist.run('echo ready-$((1+1))');
      await watcher.waitForScreen(/ready-2/, 20_000);
      const [clientBefore] = await cluster.tmuxClients(id);

      const lease = `term:{${id}}:lease`;
      expect(await redis.get(lease)).toMatch(/^\d+:/);
      expect(await redis.set(lease, '999999:another-replica', 'PX', STOLEN_MS, 'XX')).toBe('OK');

      // The owner finds out at its next renewal: its clients are redrawn, not closed.
      const closed = typist.closed.then(({ code, reason }) => {
        throw new Error(`the fenced owner's client was closed (${code} ${reason})`);
      });
      closed.catch(() => undefined);
      const reset = await Promise.race([typist.waitForFrame((f) => f.type === 'reset', 20_000), closed]);
      expect(typeof reset.offset).toBe('number');
      // Its tmux client ended: nobody runs one until the stolen lease expires and a replica with clients takes it.
      await eventually(async () => expect(await cluster.tmuxClients(id)).not.toContain(clientBefore), 10_000);

      await eventually(async () => expect(await cluster.tmuxClients(id)).toHaveLength(1), 20_000, 200);
      typist.run('echo after-$((6*7))');
      await Promise.race([typist.waitForScreen(/after-42/, 20_000), closed]);
      await watcher.waitForScreen(/after-42/, 20_000);
      await eventually(() => expect(watcher.offset).toBe(typist.offset), 10_000);
      expect(typist.socket.readyState).toBe(typist.socket.OPEN);
      expect(watcher.socket.readyState).toBe(watcher.socket.OPEN);
      expect(await cluster.tmuxClients(id)).toHaveLength(1);
    },
    TEST_TIMEOUT_MS,
  );
});
