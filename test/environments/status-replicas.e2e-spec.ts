import { testRedisUrl } from '../support/redis.js';
import { ApiClient, ServerCluster } from '../support/server-cluster.js';
import { StatusClient } from './status-client.js';

/** Two replicas of the built server on one database and one Redis: a status socket hears changes made through the other. */
describe('the status WebSocket across replicas', () => {
  let cluster: ServerCluster;
  let apis: ApiClient[];
  const clients: StatusClient[] = [];

  beforeAll(async () => {
    cluster = ServerCluster.create('status', { redisUrl: testRedisUrl() });
    apis = (await Promise.all([cluster.start(), cluster.start()])).map(({ api }) => api);
  }, 120_000);
  afterAll(async () => {
    for (const client of clients) client.close();
    await cluster?.close();
  }, 60_000);

  it('delivers creation, every phase and deletion made through one replica to a status socket on the other', async () => {
    const [one, other] = apis;
    const owner = await one.register();
    const watcher = StatusClient.open(other.baseUrl, owner.tokens.access_token);
    clients.push(watcher);
    expect(await watcher.snapshot()).toEqual([]);

    const environment = await one.createRunning(owner);
    expect(await watcher.waitFor((m) => m.type === 'environment' && m.environment.id === environment.id, 'created')).toMatchObject({
      event: 'created',
    });
    await watcher.phase(environment.id, 'running');

    await one.deleteAndWait(owner, environment.id);
    await watcher.phase(environment.id, 'terminated');
    await watcher.waitFor((m) => m.type === 'deleted' && m.id === environment.id, 'deleted');
  }, 90_000);

  it('closes a status socket on one replica with 4001 when its session is signed out through the other', async () => {
    const [one, other] = apis;
    const owner = await one.register();
    const watcher = StatusClient.open(other.baseUrl, owner.tokens.access_token);
    clients.push(watcher);
    await watcher.snapshot();
    expect((await one.json('POST', '/api/v1/auth/logout', { token: owner.tokens.access_token })).status).toBe(200);
    expect(await watcher.closed).toBe(4001);
  }, 90_000);
});
