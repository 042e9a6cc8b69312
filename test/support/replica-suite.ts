import { testRedisUrl } from './redis.js';
import { ApiClient, ClusterAccount, ServerCluster } from './server-cluster.js';
import type { TerminalTestClient } from './terminal-client.js';

/** Replicas of the built server on the test Redis, an account per test, and the test's terminal clients. */
export interface ReplicaSuite {
  readonly cluster: ServerCluster;
  /** An API client of each replica started before all tests. */
  readonly apis: ApiClient[];
  /** The current test's own account (a free account holds one environment). */
  readonly account: ClusterAccount;
  /** Terminal clients closed after the current test. */
  readonly clients: TerminalTestClient[];
}

/**
 * Registers the hooks of an e2e suite on `replicas` processes of the built server (environment
 * `env`) sharing one database, one DATA_DIR and the test Redis (ServerCluster): started before all
 * tests, a new account before each, the test's terminal clients closed after it, and everything
 * removed at the end.
 */
export function replicaSuite(prefix: string, replicas: number, env: Record<string, string> = {}): ReplicaSuite {
  let cluster: ServerCluster | undefined;
  let apis: ApiClient[] | undefined;
  let account: ClusterAccount | undefined;
  const clients: TerminalTestClient[] = [];
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the replica suite is not set up (beforeAll failed?)');
    return value;
  };

  beforeAll(async () => {
    const started = (cluster = ServerCluster.create(prefix, { redisUrl: testRedisUrl() }));
    apis = (await Promise.all(Array.from({ length: replicas }, () => started.start(env)))).map(({ api }) => api);
  }, 120_000);

  beforeEach(async () => {
    account = await ready(apis)[0].register();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });

  afterAll(() => cluster?.close(), 60_000);

  return {
    get cluster() {
      return ready(cluster);
    },
    get apis() {
      return ready(apis);
    },
    get account() {
      return ready(account);
    },
    clients,
  };
}
