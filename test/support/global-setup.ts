/**
 * Vitest globalSetup: one database and one Redis for the whole test run.
 *
 * Honours MONGODB_URI (an existing MongoDB); otherwise launches the embedded FerretDB
 * (tools/devdb) on a free port with a temporary data directory that teardown removes.
 * The server URI (without database name) reaches the tests as process.env.MONGODB_URI,
 * which forked workers inherit, and as `inject('mongodbUri')`.
 * Each test file then takes its own database name: see createTestDatabase() in ./database.ts.
 *
 * Redis: REDIS_URL when set (an existing Redis), otherwise Debian's redis-server started here on a
 * free port with its directory under /tmp, stopped at teardown. Tests that need it get its URL as
 * `inject('redisUrl')` (testRedisUrl() in ./redis.ts), and each file takes a key prefix of its own
 * (testRedisPrefix()), so files never see each other's keys or events.
 */
import type { TestProject } from 'vitest/node';

import { launchDatabase, type LaunchedDatabase } from '../../src/database/launcher/database-launcher.js';
import { startRedis, type TestRedis } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server URI of the test database, without database name. */
    mongodbUri: string;
    /** URL of the test Redis (redis://127.0.0.1:PORT). */
    redisUrl: string;
  }
}

let database: LaunchedDatabase | null = null;
let redis: TestRedis | null = null;

function log(message: string): void {
  process.stderr.write(`[test-db] ${message}\n`);
}

export async function setup(project: TestProject): Promise<void> {
  database = await launchDatabase({ mongodbUri: process.env.MONGODB_URI, log });
  process.env.MONGODB_URI = database.uri;
  project.provide('mongodbUri', database.uri);
  if (process.env.REDIS_URL) {
    project.provide('redisUrl', process.env.REDIS_URL);
  } else {
    redis = await startRedis();
    log(`redis-server on ${redis.url}`);
    project.provide('redisUrl', redis.url);
  }
}

export async function teardown(): Promise<void> {
  const running = database;
  database = null;
  const runningRedis = redis;
  redis = null;
  await Promise.all([running?.stop(), runningRedis?.close()]);
}
