/**
 * `npm run bench`: starts a database (the embedded FerretDB on its PostgreSQL backend when
 * PostgreSQL is installed, else on SQLite; or MONGODB_URI), runs each suite against the built
 * server in its own process, and prints one JSON document with every figure.
 *
 *   BENCH_SECONDS=8      duration of each load phase
 *   BENCH_SUITES=a,b     run only these suites
 */
import { cpus, totalmem } from 'node:os';
import { launchDatabase } from '../src/database/launcher/database-launcher.js';
import type { Suite } from './context.js';
import { freePort } from '../test/support/redis-server.js';
import { startPostgres } from './support/postgres.js';
import { accounts } from './suites/accounts.js';
import { environments } from './suites/environments.js';
import { foundation } from './suites/foundation.js';
import { kubernetes } from './suites/kubernetes.js';
import { link } from './suites/link.js';
import { terminalLoad } from './suites/load.js';
import { scaling } from './suites/scaling.js';
import { terminal } from './suites/terminal.js';

const SUITES: Record<string, Suite> = { foundation, accounts, environments, scaling, terminal, kubernetes, load: terminalLoad, link };

const log = (message: string): void => void process.stderr.write(`[bench] ${message}\n`);

async function main(): Promise<void> {
  const selected = (process.env.BENCH_SUITES ?? Object.keys(SUITES).join(',')).split(',').filter((name) => name in SUITES);
  const postgres = process.env.MONGODB_URI ? null : await startPostgres(await freePort());
  const database = await launchDatabase({ mongodbUri: process.env.MONGODB_URI, postgresqlUrl: postgres?.url, log });
  const results: Record<string, unknown> = {};
  try {
    for (const name of selected) {
      log(`suite ${name}…`);
      results[name] = await SUITES[name]({ mongodbUri: database.uri, port: await freePort() });
    }
  } finally {
    await database.stop();
    await postgres?.stop();
  }
  const report = {
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version },
    database: { kind: database.kind, backend: process.env.MONGODB_URI ? 'external' : postgres ? 'postgresql' : 'sqlite' },
    duration_seconds_per_load_phase: Number(process.env.BENCH_SECONDS ?? 8),
    results,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

void main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
