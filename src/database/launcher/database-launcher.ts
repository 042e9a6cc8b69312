import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { MongoClient } from 'mongodb';

import { ensureDevdbBinary, GoNotFoundError, type LauncherLog } from './devdb-binary.js';
import { redactUri } from './mongodb-uri.js';
import { guardChildStdio } from '../../common/process/child-stdio.js';

export type DatabaseKind = 'external' | 'ferretdb' | 'mongodb-memory-server';

export interface LaunchedDatabase {
  kind: DatabaseKind;
  /**
   * Connection string. For embedded databases `mongodb://127.0.0.1:PORT` (no database name);
   * for `external` the `mongodbUri` exactly as given.
   */
  uri: string;
  /** Where the data lives; null for external and PostgreSQL-backed databases. */
  dataDir: string | null;
  /** Process id of the database server we started; null when we started none (external). */
  pid: number | null;
  /** Stops the database (no-op for external) and removes its data when it was temporary. Idempotent. */
  stop(): Promise<void>;
}

export interface LaunchOptions {
  /** When set: external, just wait until it answers; stop() is a no-op. */
  mongodbUri?: string;
  /** Persistent SQLite data dir; when omitted, a temp dir removed by stop(). */
  dataDir?: string;
  /** TCP port on 127.0.0.1; default 0 (a free port). */
  port?: number;
  /** Use FerretDB's PostgreSQL backend instead of SQLite. */
  postgresqlUrl?: string;
  /** Progress messages; default console.error. */
  log?: LauncherLog;
  /** How long to wait for the database to answer a ping once started; default 120000. */
  readyTimeoutMs?: number;
}

type DevdbProcess = ChildProcessByStdio<Writable, Readable, Readable>;

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface ReadyLine {
  ready: true;
  listen: string;
}

interface DataDirectory {
  path: string;
  temporary: boolean;
}

const DEFAULT_READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 5_000;
const PING_ATTEMPT_TIMEOUT_MS = 2_000;
const PING_RETRY_DELAY_MS = 250;
const STDERR_TAIL_LINES = 30;

/**
 * Starts (or connects to) the MongoDB-compatible database used in development and tests.
 *
 * Order: `mongodbUri` → external; else embedded FerretDB (tools/devdb, built when needed);
 * if Go is missing and no binary is cached, mongodb-memory-server (needs internet to download mongod).
 */
export async function launchDatabase(options: LaunchOptions = {}): Promise<LaunchedDatabase> {
  const log = options.log ?? defaultLog;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const port = validatePort(options.port ?? 0);
  const postgresqlUrl = nonEmpty(options.postgresqlUrl);
  const mongodbUri = nonEmpty(options.mongodbUri);

  if (mongodbUri !== undefined) {
    return useExternal(mongodbUri, readyTimeoutMs, log);
  }

  const dataDirOption = nonEmpty(options.dataDir);
  if (dataDirOption !== undefined && postgresqlUrl === undefined) {
    const running = await findRunning(path.resolve(dataDirOption), log);
    if (running) return running;
  }

  let binary: string;
  try {
    binary = await ensureDevdbBinary(log);
  } catch (error) {
    if (error instanceof GoNotFoundError && postgresqlUrl === undefined) {
      log(`${error.message}. Falling back to mongodb-memory-server.`);
      return launchMemoryServer(nonEmpty(options.dataDir), port, log);
    }
    throw error;
  }

  return launchFerretDb(binary, { dataDir: nonEmpty(options.dataDir), port, postgresqlUrl, readyTimeoutMs }, log);
}

/** Resolves once `uri` answers `ping`, retrying until `timeoutMs` has passed. */
export async function pingDatabase(uri: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;

  do {
    const attemptTimeout = clamp(deadline - Date.now(), 100, PING_ATTEMPT_TIMEOUT_MS);
    const client = new MongoClient(uri, {
      serverSelectionTimeoutMS: attemptTimeout,
      connectTimeoutMS: attemptTimeout,
    });
    try {
      await client.db('admin').command({ ping: 1 });
      return;
    } catch (error) {
      lastError = error;
    } finally {
      await client.close().catch(() => undefined);
    }
    await delay(clamp(deadline - Date.now(), 0, PING_RETRY_DELAY_MS));
  } while (Date.now() < deadline);

  throw new Error(`Database at ${redactUri(uri)} did not answer ping within ${timeoutMs} ms: ${errorMessage(lastError)}`);
}

async function useExternal(uri: string, readyTimeoutMs: number, log: LauncherLog): Promise<LaunchedDatabase> {
  log(`Using the external MongoDB at ${redactUri(uri)}`);
  await pingDatabase(uri, readyTimeoutMs);
  return { kind: 'external', uri, dataDir: null, pid: null, stop: () => Promise.resolve() };
}

interface FerretDbOptions {
  dataDir?: string;
  port: number;
  postgresqlUrl?: string;
  readyTimeoutMs: number;
}

async function launchFerretDb(binary: string, options: FerretDbOptions, log: LauncherLog): Promise<LaunchedDatabase> {
  const dataDir = options.postgresqlUrl === undefined ? await prepareDataDir(options.dataDir) : null;
  const args = devdbArgs(options.port, dataDir?.path ?? null, options.postgresqlUrl);

  // Its own process group: a Ctrl-C or a watcher's signal to our group reaches us, and we stop the
  // database in order; if we die, its stdin closes and it exits by itself (--exit-on-stdin-eof).
  const child: DevdbProcess = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  guardChildStdio(child);
  const exited = waitForExit(child);
  const stderrTail = forwardStderr(child, log);

  const cleanup = async (): Promise<void> => {
    if (dataDir && !dataDir.temporary) await fs.rm(path.join(dataDir.path, ENDPOINT_FILE), { force: true });
    await stopProcess(child, exited);
    if (dataDir?.temporary === true) {
      await fs.rm(dataDir.path, { recursive: true, force: true });
    }
  };

  let uri: string;
  try {
    const ready = await readReadyLine(child, exited, options.readyTimeoutMs, stderrTail);
    uri = `mongodb://${ready.listen}`;
    await pingDatabase(uri, options.readyTimeoutMs);
  } catch (error) {
    await cleanup();
    throw error;
  }

  logStarted(log, uri, child.pid ?? null, dataDir, options.postgresqlUrl);
  const endpointFile = dataDir && !dataDir.temporary ? path.join(dataDir.path, ENDPOINT_FILE) : null;
  if (endpointFile) await fs.writeFile(endpointFile, JSON.stringify({ pid: child.pid, uri }), { mode: 0o600 });

  let stopped: Promise<void> | null = null;
  void exited.then((status) => {
    if (stopped !== null) return;
    // devdb exits with 0 only when told to (SIGTERM or SIGINT, e.g. a process manager stopping the
    // whole group, or its stdin closing): that is a stop, not a crash.
    if (status.code === 0) log(`Embedded database (pid ${String(child.pid)}) stopped: it was told to stop from outside this server`);
    else log(`Embedded database (pid ${String(child.pid)}) exited unexpectedly: ${describeExit(status)}`);
  });

  return {
    kind: 'ferretdb',
    uri,
    dataDir: dataDir?.path ?? null,
    pid: child.pid ?? null,
    stop: () => {
      stopped ??= cleanup();
      return stopped;
    },
  };
}

/** Written into a persistent data directory while its database runs, so other processes can share it. */
const ENDPOINT_FILE = 'devdb-endpoint.json';

/**
 * The database already serving `dataDir` (started by `npm run start:dev`, `npm run db` or another
 * process), if it is alive and answers. Its owner stops it; `stop()` here does nothing.
 */
async function findRunning(dataDir: string, log: LauncherLog): Promise<LaunchedDatabase | null> {
  let endpoint: { pid?: unknown; uri?: unknown };
  try {
    endpoint = JSON.parse(await fs.readFile(path.join(dataDir, ENDPOINT_FILE), 'utf8')) as { pid?: unknown; uri?: unknown };
  } catch {
    return null;
  }
  if (typeof endpoint.pid !== 'number' || typeof endpoint.uri !== 'string') return null;
  try {
    process.kill(endpoint.pid, 0);
    await pingDatabase(endpoint.uri, 1_000);
  } catch {
    return null;
  }
  log(`Using the embedded database already running for ${dataDir} (pid ${endpoint.pid}) at ${endpoint.uri}`);
  return { kind: 'ferretdb', uri: endpoint.uri, dataDir, pid: endpoint.pid, stop: () => Promise.resolve() };
}

function devdbArgs(port: number, dataDir: string | null, postgresqlUrl: string | undefined): string[] {
  const args = ['--listen', `127.0.0.1:${port}`, '--exit-on-stdin-eof', '--log-level', nonEmpty(process.env.DEVDB_LOG_LEVEL) ?? 'warn'];
  if (postgresqlUrl !== undefined) {
    args.push('--postgresql-url', postgresqlUrl);
  } else if (dataDir !== null) {
    args.push('--data-dir', dataDir);
  }
  return args;
}

async function prepareDataDir(dataDir: string | undefined): Promise<DataDirectory> {
  if (dataDir !== undefined) {
    const resolved = path.resolve(dataDir);
    await fs.mkdir(resolved, { recursive: true });
    return { path: resolved, temporary: false };
  }
  return { path: await fs.mkdtemp(path.join(os.tmpdir(), 'devpocket-db-')), temporary: true };
}

function logStarted(
  log: LauncherLog,
  uri: string,
  pid: number | null,
  dataDir: DataDirectory | null,
  postgresqlUrl: string | undefined,
): void {
  const storage =
    postgresqlUrl !== undefined
      ? `PostgreSQL backend ${redactUri(postgresqlUrl)}`
      : `SQLite data in ${dataDir?.path ?? '?'}${dataDir?.temporary === true ? ' (temporary, removed on stop)' : ''}`;
  log(`Embedded FerretDB ready at ${uri} (pid ${String(pid)}), ${storage}`);
}

function waitForExit(child: DevdbProcess): Promise<ExitStatus> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // A spawn failure (e.g. EACCES) emits 'error' without 'exit'.
    child.once('error', () => resolve({ code: null, signal: null }));
  });
}

/** Forwards the child's stderr to `log` and keeps its last lines for error messages. */
function forwardStderr(child: DevdbProcess, log: LauncherLog): string[] {
  const tail: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    log(`[devdb] ${line}`);
    tail.push(line);
    if (tail.length > STDERR_TAIL_LINES) {
      tail.shift();
    }
  });
  return tail;
}

/** Waits for `{"ready":true,"listen":"HOST:PORT"}` on the child's stdout. */
function readReadyLine(
  child: DevdbProcess,
  exited: Promise<ExitStatus>,
  timeoutMs: number,
  stderrTail: readonly string[],
): Promise<ReadyLine> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      finish(() => reject(new Error(`Embedded database did not become ready within ${timeoutMs} ms`)));
    }, timeoutMs);

    let done = false;
    const finish = (settle: () => void): void => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        lines.close();
        // Keep draining stdout so the child can never block on a full pipe.
        child.stdout.resume();
        settle();
      }
    };

    lines.on('line', (line) => {
      const ready = parseReadyLine(line);
      if (ready !== null) {
        finish(() => resolve(ready));
      }
    });
    child.once('error', (error) => {
      finish(() => reject(new Error(`Cannot start the embedded database: ${error.message}`)));
    });
    void exited.then((status) => {
      finish(() => reject(new Error(startFailureMessage(status, stderrTail))));
    });
  });
}

function parseReadyLine(line: string): ReadyLine | null {
  try {
    const value: unknown = JSON.parse(line);
    if (
      typeof value === 'object' &&
      value !== null &&
      'ready' in value &&
      value.ready === true &&
      'listen' in value &&
      typeof value.listen === 'string'
    ) {
      return { ready: true, listen: value.listen };
    }
  } catch {
    // Not the ready line.
  }
  return null;
}

function startFailureMessage(status: ExitStatus, stderrTail: readonly string[]): string {
  const output = stderrTail.length > 0 ? `:\n${stderrTail.join('\n')}` : '';
  return `Embedded database exited before becoming ready (${describeExit(status)})${output}`;
}

/** SIGTERM, then SIGKILL after {@link STOP_GRACE_MS}; resolves once the process has exited. */
async function stopProcess(child: DevdbProcess, exited: Promise<ExitStatus>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    child.kill('SIGTERM');
    if ((await withTimeout(exited, STOP_GRACE_MS)) === 'timeout') {
      child.kill('SIGKILL');
    }
    await exited;
  }
  child.stdin.destroy();
  child.stdout.destroy();
  child.stderr.destroy();
}

async function launchMemoryServer(dataDir: string | undefined, port: number, log: LauncherLog): Promise<LaunchedDatabase> {
  let memoryServerModule: typeof import('mongodb-memory-server');
  try {
    memoryServerModule = await import('mongodb-memory-server');
  } catch (error) {
    throw new Error(`${new GoNotFoundError().message}; mongodb-memory-server is not installed either (${errorMessage(error)})`, {
      cause: error,
    });
  }

  const persistentDir = dataDir !== undefined ? path.resolve(dataDir) : undefined;
  if (persistentDir !== undefined) {
    await fs.mkdir(persistentDir, { recursive: true });
  }

  log('Starting mongodb-memory-server (downloads a mongod binary on first use; needs internet)…');
  let server: InstanceType<typeof memoryServerModule.MongoMemoryServer>;
  try {
    server = await memoryServerModule.MongoMemoryServer.create({
      instance: {
        ...(port !== 0 ? { port } : {}),
        ...(persistentDir !== undefined ? { dbPath: persistentDir, storageEngine: 'wiredTiger' as const } : {}),
      },
    });
  } catch (error) {
    throw new Error(`mongodb-memory-server could not start (${errorMessage(error)}). ${new GoNotFoundError().message}`, {
      cause: error,
    });
  }
  const uri = server.getUri().replace(/\/$/, '');
  const instanceDir = persistentDir ?? server.instanceInfo?.dbPath ?? null;
  log(`mongodb-memory-server ready at ${uri}, data in ${instanceDir ?? '?'}${persistentDir === undefined ? ' (temporary)' : ''}`);

  let stopped: Promise<void> | null = null;
  return {
    kind: 'mongodb-memory-server',
    uri,
    dataDir: instanceDir,
    pid: server.instanceInfo?.instance.mongodProcess?.pid ?? null,
    stop: () => {
      stopped ??= server.stop({ doCleanup: persistentDir === undefined }).then(() => undefined);
      return stopped;
    },
  };
}

/** Resolves with the promise's value, or with 'timeout' after `ms` (the timer never outlives the race). */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function validatePort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`Invalid port ${port}`);
  }
  return port;
}

function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `signal ${status.signal}` : `exit code ${String(status.code)}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function defaultLog(message: string): void {
  console.error(message);
}
