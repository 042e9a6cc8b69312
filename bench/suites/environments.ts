import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callerAt, type EnvironmentBody } from '../support/api-client.js';
import { load, median, percentile } from '../support/load.js';
import { setTeamPlan, startServer } from '../support/server.js';
import type { BenchContext } from '../context.js';

const CREATES = 5;

type Environment = EnvironmentBody;

/** The API as one client address (the server trusts loopback's X-Forwarded-For). */
const call = callerAt('10.88.0.1');

/**
 * Environment create → running on the local runtime (provision: directories, tmux server and
 * session, state; the template's startup steps continue in the background), and the throughput of
 * listing a user's environments.
 */
export async function environments(ctx: BenchContext): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'devpocket-bench-env-'));
  const server = await startServer(ctx.mongodbUri, 'bench_environments', ctx.port, { TRUSTED_PROXIES: 'loopback', DATA_DIR: dataDir });
  try {
    const registered = await call<{ access_token: string }>(server.baseUrl, 'POST', '/api/v1/auth/register', null, {
      username: 'bench_env',
      email: 'bench_env@bench.example',
      password: 'Bench1Password',
    });
    const token = registered.body.access_token;
    await setTeamPlan(ctx.mongodbUri, 'bench_environments', dataDir, 'bench_env');

    const timings: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < CREATES; i += 1) {
      const started = performance.now();
      const created = await call<Environment>(server.baseUrl, 'POST', '/api/v1/environments', token, {
        name: `Bench ${i}`,
        template: 'debian',
      });
      if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
      for (;;) {
        const current = await call<Environment>(server.baseUrl, 'GET', `/api/v1/environments/${created.body.id}`, token);
        if (current.body.phase === 'running') break;
        if (current.body.phase === 'error') throw new Error(`environment failed: ${JSON.stringify(current.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      timings.push(performance.now() - started);
      ids.push(created.body.id);
    }
    const sorted = [...timings].sort((a, b) => a - b);
    const list = await load({ url: `${server.baseUrl}/api/v1/environments`, headers: { authorization: `Bearer ${token}` } });
    for (const id of ids) await call(server.baseUrl, 'DELETE', `/api/v1/environments/${id}`, token);
    for (const id of ids) {
      while ((await call<Environment>(server.baseUrl, 'GET', `/api/v1/environments/${id}`, token)).body.phase !== 'terminated') {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    return {
      create_to_running_ms: {
        median: Math.round(median(timings)),
        max: Math.round(percentile(sorted, 100)),
        runs: timings.map(Math.round),
        template: 'debian',
        runtime: 'local',
      },
      list_environments: { ...list, environments_listed: CREATES },
    };
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
