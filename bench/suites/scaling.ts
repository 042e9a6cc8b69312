import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRedis, type TestRedis } from '../../test/support/redis-server.js';
import autocannon from 'autocannon';
import { callerAt, type EnvironmentBody } from '../support/api-client.js';
import { median, summarize, type LoadResult } from '../support/load.js';
import { setTeamPlan, startServer, type BenchServer } from '../support/server.js';
import { measureEcho, quiet, startCat, stopCat, WsTerminal, type EchoResult } from '../support/terminals.js';
import type { BenchContext } from '../context.js';

const ENVIRONMENTS = 5;
const DB_NAME = 'bench_scaling';

type Environment = EnvironmentBody;

/** The API as one client address (the server trusts loopback's X-Forwarded-For). */
const call = callerAt('10.99.0.1');

async function waitForPhase(baseUrl: string, token: string, id: string, phase: string): Promise<void> {
  for (;;) {
    const current = await call<Environment>(baseUrl, 'GET', `/api/v1/environments/${id}`, token);
    if (current.body.phase === phase) return;
    if (current.body.phase === 'error') throw new Error(`environment failed: ${JSON.stringify(current.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const CLIENTS = 1_000;
const clientIp = (i: number): string => `10.${50 + Math.floor(i / 62_500)}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`;

/**
 * Drives one URL with autocannon (32 connections), each request from the next of CLIENTS client
 * addresses (X-Forwarded-For; the server trusts loopback proxies), as many phones would send them:
 * every address has its own rate-limit budget, as in production. (From one address, the in-memory
 * throttler's sliding window would cost each request time proportional to that address's hits in
 * the last minute, which only a benchmark with RATE_LIMIT_MAX raised to a million produces.)
 */
async function load(url: string, headers: Record<string, string> = {}): Promise<LoadResult> {
  let n = 0;
  const result = await autocannon({
    url,
    connections: 32,
    duration: Number(process.env.BENCH_SECONDS ?? 8),
    requests: [{ setupRequest: (request) => ({ ...request, headers: { ...headers, 'x-forwarded-for': clientIp(n++ % CLIENTS) } }) }],
  });
  return summarize(result);
}

/** Requests per second as a share of the floor's, in percent. */
const share = (result: LoadResult, floor: LoadResult): number => (result.requests_per_second / floor.requests_per_second) * 100;

/** Rounds of (floor, /auth/me, list) per mode: the floor and what is compared with it are measured moments apart, every round. */
const ROUNDS = Number(process.env.BENCH_SCALING_ROUNDS ?? 3);

/** One endpoint over the rounds: requests per second, latencies and share of the floor as medians. */
function summary(rounds: LoadResult[], floors: LoadResult[] | null): Record<string, unknown> {
  return {
    requests_per_second: Math.round(median(rounds.map((r) => r.requests_per_second))),
    latency_p50_ms: median(rounds.map((r) => r.latency_p50_ms)),
    latency_p99_ms: median(rounds.map((r) => r.latency_p99_ms)),
    ...(floors ? { percent_of_floor: Math.round(median(rounds.map((r, i) => share(r, floors[i]))) * 10) / 10 } : {}),
    non_2xx: rounds.reduce((sum, r) => sum + r.non_2xx, 0),
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    rounds: rounds.map((r) => ({ requests_per_second: r.requests_per_second, latency_p99_ms: r.latency_p99_ms })),
  };
}

/**
 * Authenticated requests without and with Redis (REDIS_URL, a redis-server of its own), each beside
 * its floor in the same run: `GET /health/ready`, one database round trip per request. Measured:
 * `GET /api/v1/auth/me` (the authentication check alone: token, session, user) and
 * `GET /api/v1/environments` (the same, plus the caller's 5 environments mapped with their preview
 * links). Once the principal cache and the environment list cache are warm neither reads the
 * database (a list is read again after a write of one of its environments, on every replica); with
 * Redis, every request also counts against the global rate limit in Redis (one Lua script).
 */
export async function scaling(ctx: BenchContext): Promise<Record<string, unknown>> {
  const redis = await startRedis();
  const dataDir = mkdtempSync(join(tmpdir(), 'devpocket-bench-scale-'));
  const results: Record<string, unknown> = {};
  let token = '';
  const ids: string[] = [];
  try {
    for (const mode of ['without_redis', 'with_redis'] as const) {
      const server = await startServer(ctx.mongodbUri, DB_NAME, ctx.port, {
        TRUSTED_PROXIES: 'loopback',
        DATA_DIR: dataDir,
        ...(mode === 'with_redis' ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'bench:' } : {}),
      });
      try {
        if (ids.length === 0) {
          const registered = await call<{ access_token: string }>(server.baseUrl, 'POST', '/api/v1/auth/register', null, {
            username: 'bench_scale',
            email: 'bench_scale@bench.example',
            password: 'Bench1Password',
          });
          if (registered.status !== 201) throw new Error(`register: ${registered.status}`);
          token = registered.body.access_token;
          await setTeamPlan(ctx.mongodbUri, DB_NAME, dataDir, 'bench_scale');
          for (let i = 0; i < ENVIRONMENTS; i += 1) {
            const created = await call<Environment>(server.baseUrl, 'POST', '/api/v1/environments', token, {
              name: `Scale ${i}`,
              template: 'debian',
            });
            if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
            await waitForPhase(server.baseUrl, token, created.body.id, 'running');
            ids.push(created.body.id);
          }
        }
        const authorization = { authorization: `Bearer ${token}` };
        const floors: LoadResult[] = [];
        const mes: LoadResult[] = [];
        const lists: LoadResult[] = [];
        for (let round = 0; round < ROUNDS; round += 1) {
          floors.push(await load(`${server.baseUrl}/health/ready`));
          mes.push(await load(`${server.baseUrl}/api/v1/auth/me`, authorization));
          lists.push(await load(`${server.baseUrl}/api/v1/environments`, authorization));
        }
        results[mode] = {
          health_ready: summary(floors, null),
          auth_me: summary(mes, floors),
          list_environments: { ...summary(lists, floors), environments_listed: ENVIRONMENTS },
        };
        if (mode === 'with_redis') {
          for (const id of ids) await call(server.baseUrl, 'DELETE', `/api/v1/environments/${id}`, token);
          for (const id of ids) await waitForPhase(server.baseUrl, token, id, 'terminated');
        }
      } finally {
        await server.stop();
      }
    }
    results.terminal_echo_two_replicas = await echoAcrossReplicas(ctx, redis, dataDir);
    return { ...results, client_addresses: CLIENTS, rounds: ROUNDS, target: 'list_environments at >= 70 % of health_ready, p99 < 50 ms' };
  } finally {
    await redis.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const ECHO_SAMPLES = Number(process.env.BENCH_SCALING_ECHO_SAMPLES ?? 200);
const ECHO_ROUNDS = Number(process.env.BENCH_SCALING_ECHO_ROUNDS ?? 4);

/**
 * Keystroke echo through the replica that owns an environment's terminal (its tmux client runs
 * there) and through one that does not (input goes to the owner through Redis, output comes back
 * through the environment's output stream), two replicas on one Redis, in the same run: rounds
 * alternate between the two, each a `cat` echoing one key at a time (bench/support/terminals.ts).
 */
async function echoAcrossReplicas(ctx: BenchContext, redis: TestRedis, dataDir: string): Promise<Record<string, unknown>> {
  const env = { TRUSTED_PROXIES: 'loopback', DATA_DIR: dataDir, REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'bench-echo:' };
  const servers: BenchServer[] = [];
  const terminals: WsTerminal[] = [];
  try {
    servers.push(await startServer(ctx.mongodbUri, DB_NAME, ctx.port, env));
    servers.push(await startServer(ctx.mongodbUri, DB_NAME, await freePort(), env));
    const [owner, other] = servers;
    const registered = await call<{ access_token: string }>(owner.baseUrl, 'POST', '/api/v1/auth/register', null, {
      username: 'bench_echo',
      email: 'bench_echo@bench.example',
      password: 'Bench1Password',
    });
    if (registered.status !== 201) throw new Error(`register: ${registered.status}`);
    const token = registered.body.access_token;
    const created = await call<Environment>(owner.baseUrl, 'POST', '/api/v1/environments', token, { name: 'Echo', template: 'debian' });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.id;
    await waitForPhase(owner.baseUrl, token, id, 'running');
    // The first client's replica takes the environment's lease: `owner` runs the tmux client.
    const throughOwner = await WsTerminal.connect(owner.baseUrl, id, token);
    terminals.push(throughOwner);
    await quiet(throughOwner, 500);
    const throughOther = await WsTerminal.connect(other.baseUrl, id, token);
    terminals.push(throughOther);
    await quiet(throughOther, 500);
    await startCat(throughOwner);
    const ownerRounds: EchoResult[] = [];
    const otherRounds: EchoResult[] = [];
    for (let round = 0; round < ECHO_ROUNDS; round += 1) {
      ownerRounds.push(await measureEcho(throughOwner, ECHO_SAMPLES));
      otherRounds.push(await measureEcho(throughOther, ECHO_SAMPLES));
    }
    await stopCat(throughOwner);
    await call(owner.baseUrl, 'DELETE', `/api/v1/environments/${id}`, token);
    await waitForPhase(owner.baseUrl, token, id, 'terminated');
    const combine = (rounds: EchoResult[]) => ({
      p50_ms: median(rounds.map((r) => r.p50_ms)),
      p99_ms: median(rounds.map((r) => r.p99_ms)),
      samples: rounds.reduce((sum, r) => sum + r.samples, 0),
      timeouts: rounds.reduce((sum, r) => sum + r.timeouts, 0),
      rounds,
    });
    return {
      method: `one key at a time at \`cat\`, ${ECHO_SAMPLES} keys per round, ${ECHO_ROUNDS} rounds alternating; median of the rounds`,
      through_owner: combine(ownerRounds),
      through_other_replica: combine(otherRounds),
    };
  } finally {
    await Promise.all(terminals.map((terminal) => terminal.close()));
    for (const server of servers) await server.stop();
  }
}
