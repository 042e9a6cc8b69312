import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findRepoRoot } from '../../src/database/launcher/devdb-binary.js';
import type { TestDatabase } from './database.js';
import { TEST_JWT_SECRET } from './test-app.js';

export const REPO_ROOT = findRepoRoot();
const MAIN = join(REPO_ROOT, 'dist', 'main.js');

/**
 * The environment of a built server under test: NODE_ENV=test, JSON log lines at info (to read in
 * `stdout`), a free port on loopback, `database`, the test JWT secret and `dataDir`.
 */
export function testServerEnv(database: TestDatabase, dataDir: string): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    PORT: '0',
    HOST: '127.0.0.1',
    MONGODB_URI: database.serverUri,
    MONGODB_DB_NAME: database.name,
    JWT_SECRET: TEST_JWT_SECRET,
    DATA_DIR: dataDir,
  };
}

/** The compiled server (`npm test` builds it first), started as its own process like `npm run start:prod`. */
export class ServerProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(env: Record<string, string>) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !/^(MONGODB_|JWT_|NODE_ENV|PORT|DATA_DIR|LOG_LEVEL|REDIS_)/.test(key)),
    );
    this.child = spawn(process.execPath, [MAIN], { cwd: REPO_ROOT, env: { ...base, ...env }, stdio: 'pipe' });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolves with the base URL once the server logs that it listens; rejects if it exits first. */
  async listening(timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const exited = this.exited.then((status) => {
      throw new Error(`server exited (${JSON.stringify(status)}) before listening:\n${this.stdout}\n${this.stderr}`);
    });
    exited.catch(() => undefined);
    while (Date.now() < deadline) {
      const match = /listening on (http:\/\/[^\s)]+)/.exec(this.stdout);
      if (match?.[1]) return match[1].replace('[::1]', '127.0.0.1');
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 50)), exited]);
    }
    throw new Error(`server did not listen within ${timeoutMs} ms:\n${this.stdout}\n${this.stderr}`);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal);
  }

  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.kill('SIGTERM');
    return this.exited;
  }
}
