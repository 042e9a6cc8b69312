import { existsSync, promises as fs, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { launchDatabase, pingDatabase, type LaunchedDatabase } from './database-launcher.js';
import { ensureDevdbBinary } from './devdb-binary.js';

const BUILD_TIMEOUT_MS = 300_000;

interface Item {
  _id: string;
  v: number;
}
const quiet = (): void => undefined;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}

async function withClient<T>(uri: string, action: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5_000 });
  try {
    return await action(client);
  } finally {
    await client.close();
  }
}

async function stopAndCheck(database: LaunchedDatabase): Promise<void> {
  const pid = database.pid;
  await database.stop();
  expect(pid).not.toBeNull();
  expect(isRunning(pid ?? 0)).toBe(false);
}

describe('launchDatabase (embedded FerretDB)', () => {
  let dataDir: string;

  beforeAll(async () => {
    // The first run compiles tools/devdb (about a minute); later runs reuse the cached binary.
    await ensureDevdbBinary(quiet);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'devpocket-launcher-spec-'));
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('keeps data in a persistent data dir across restarts and leaves no process behind', async () => {
    const first = await launchDatabase({ dataDir, log: quiet });
    expect(first.kind).toBe('ferretdb');
    expect(first.dataDir).toBe(dataDir);
    expect(first.uri).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+$/);
    await withClient(first.uri, (client) => client.db('persist').collection<Item>('items').insertOne({ _id: 'a', v: 42 }));
    await stopAndCheck(first);

    const second = await launchDatabase({ dataDir, log: quiet });
    const doc = await withClient(second.uri, (client) => client.db('persist').collection<Item>('items').findOne({ _id: 'a' }));
    await stopAndCheck(second);

    expect(doc).toEqual({ _id: 'a', v: 42 });
    expect(existsSync(dataDir)).toBe(true);
  });

  it('joins the instance already serving a data dir instead of starting a second one', async () => {
    const running = await launchDatabase({ dataDir, log: quiet });
    try {
      const joined = await launchDatabase({ dataDir, log: quiet });
      expect(joined.uri).toBe(running.uri);
      expect(joined.pid).toBe(running.pid);
      await joined.stop(); // the owner stops it, not a process that joined
      await withClient(running.uri, (client) => client.db('admin').command({ ping: 1 }));
    } finally {
      await running.stop();
    }
  });

  it('ignores a stale endpoint file left by a killed instance', async () => {
    const running = await launchDatabase({ dataDir, log: quiet });
    const endpoint = path.join(dataDir, 'devdb-endpoint.json');
    const stale = readFileSync(endpoint, 'utf8');
    await running.stop();
    writeFileSync(endpoint, stale);
    const fresh = await launchDatabase({ dataDir, log: quiet });
    try {
      expect(fresh.pid).not.toBe(running.pid);
      await withClient(fresh.uri, (client) => client.db('admin').command({ ping: 1 }));
    } finally {
      await fresh.stop();
    }
  });

  it('the devdb itself still refuses a data dir locked by another devdb process', async () => {
    const running = await launchDatabase({ dataDir, log: quiet });
    try {
      rmSync(path.join(dataDir, 'devdb-endpoint.json'));
      await expect(launchDatabase({ dataDir, log: quiet })).rejects.toThrow(/in use by another devdb process/);
    } finally {
      await running.stop();
    }
  });

  it('removes its temporary data dir on stop, and stop() is idempotent', async () => {
    const database = await launchDatabase({ log: quiet });
    const temporaryDir = database.dataDir;
    expect(temporaryDir).not.toBeNull();
    expect(existsSync(temporaryDir ?? '')).toBe(true);

    await Promise.all([database.stop(), database.stop()]);
    await database.stop();

    expect(existsSync(temporaryDir ?? '')).toBe(false);
    expect(isRunning(database.pid ?? 0)).toBe(false);
  });

  it('reports a database stopped from outside as stopped, and one that crashed as unexpected', async () => {
    const lines: string[] = [];
    const log = (line: string): void => void lines.push(line);
    const told = await launchDatabase({ log });
    const crashed = await launchDatabase({ log });
    try {
      // What a process manager does when it stops the whole group at once, and what a crash looks like.
      process.kill(told.pid ?? 0, 'SIGTERM');
      process.kill(crashed.pid ?? 0, 'SIGKILL');
      await eventuallyTrue(() => !isRunning(told.pid ?? 0) && !isRunning(crashed.pid ?? 0));
      await eventuallyTrue(() => lines.filter((line) => /Embedded database \(pid \d+\) (stopped|exited)/.test(line)).length === 2);
      expect(lines).toContain(`Embedded database (pid ${told.pid}) stopped: it was told to stop from outside this server`);
      expect(lines).toContain(`Embedded database (pid ${crashed.pid}) exited unexpectedly: signal SIGKILL`);
      expect(lines.join('\n')).not.toMatch(/unexpectedly: exit code 0/);
    } finally {
      await told.stop();
      await crashed.stop();
    }
  });

  it('uses an external database as is when mongodbUri is given', async () => {
    const embedded = await launchDatabase({ log: quiet });
    try {
      const external = await launchDatabase({ mongodbUri: embedded.uri, log: quiet });
      expect(external).toMatchObject({ kind: 'external', uri: embedded.uri, dataDir: null, pid: null });
      await external.stop();
      await pingDatabase(embedded.uri, 5_000);
    } finally {
      await embedded.stop();
    }
  });
});

describe('pingDatabase', () => {
  it('fails after the timeout when nothing answers', async () => {
    const started = Date.now();
    await expect(pingDatabase('mongodb://127.0.0.1:1', 1_000)).rejects.toThrow(/did not answer ping within 1000 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

async function eventuallyTrue(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
