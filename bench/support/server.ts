import { ChildProcessWithoutNullStreams, execFile, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
/**
 * How `npm run start:prod` runs the server (`VAR=value … node <flags> dist/main.js`; the image's
 * ENV and CMD have the same): its variables, and the flags it gives Node.
 */
export const PRODUCTION_START: { env: Record<string, string>; flags: string[] } = (() => {
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const words = scripts['start:prod'].split(' ');
  const node = words.indexOf('node');
  const env = Object.fromEntries(words.slice(0, node).map((word) => [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)]));
  return { env, flags: words.slice(node + 1, -1) };
})();
export const BENCH_JWT_SECRET = 'bench-only-jwt-secret-8d2f4a6c9e1b3d5f7a9c2e4b6d8f0a1c';

export interface BenchServer {
  baseUrl: string;
  pid: number;
  /** Milliseconds from spawn until /health/ready answered 200. */
  startupMs: number;
  stop(): Promise<void>;
}

/** The environment the built server and CLI run with in the benchmarks (production mode). */
function benchEnv(mongodbUri: string, dbName: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...PRODUCTION_START.env,
    NODE_ENV: 'production',
    ALLOW_UNSANDBOXED_LOCAL_RUNTIME: 'true',
    MONGODB_URI: mongodbUri,
    MONGODB_DB_NAME: dbName,
    JWT_SECRET: BENCH_JWT_SECRET,
    ...extra,
  };
}

/** Puts a user on the team plan through the admin CLI (dist/cli.js). */
export async function setTeamPlan(mongodbUri: string, dbName: string, dataDir: string, username: string): Promise<void> {
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'dist', 'cli.js'), 'set-plan', username, 'team'], {
    env: benchEnv(mongodbUri, dbName, { DATA_DIR: dataDir }),
  });
}

/** Starts the built server (dist/main.js) as production would run it, against the given database. */
export async function startServer(
  mongodbUri: string,
  dbName: string,
  port: number,
  env: Record<string, string> = {},
): Promise<BenchServer> {
  const started = performance.now();
  // Node's flags as production runs it (`npm run start:prod`, the image's CMD); BENCH_SERVER_NODE_FLAGS replaces them.
  const flags = (process.env.BENCH_SERVER_NODE_FLAGS ?? PRODUCTION_START.flags.join(' ')).split(' ').filter(Boolean);
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [...flags, join(REPO_ROOT, 'dist', 'main.js')], {
    cwd: REPO_ROOT,
    env: benchEnv(mongodbUri, dbName, {
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: process.env.BENCH_SERVER_LOG_LEVEL ?? 'warn',
      RATE_LIMIT_MAX: '1000000',
      ...env,
    }),
    stdio: 'pipe',
  });
  let output = '';
  // BENCH_SERVER_LOG_DIR=<dir>: every server's output is kept in <dir>/server-<port>.log.
  const kept = process.env.BENCH_SERVER_LOG_DIR
    ? createWriteStream(join(process.env.BENCH_SERVER_LOG_DIR, `server-${port}.log`), { flags: 'a' })
    : null;
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
    kept?.write(chunk);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const baseUrl = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited during start:\n${output}`);
    try {
      const res = await fetch(`${baseUrl}/health/ready`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() - started > 60_000) throw new Error(`server not ready after 60 s:\n${output}`);
    await delay(5);
  }
  const startupMs = performance.now() - started;
  return {
    baseUrl,
    pid: child.pid!,
    startupMs,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Kills any tmux server still running under the data directory (a failed run). */
export function killTmuxServers(dataDir: string): void {
  const root = join(dataDir, 'environments');
  if (!existsSync(root)) return;
  for (const envId of readdirSync(root)) {
    const tmuxRoot = join(root, envId, 'tmux');
    if (!existsSync(tmuxRoot)) continue;
    for (const userDir of readdirSync(tmuxRoot).filter((name) => name.startsWith('tmux-'))) {
      try {
        execFileSync('tmux', ['-N', '-S', join(tmuxRoot, userDir, 'default'), 'kill-server'], { stdio: 'ignore' });
      } catch {
        // not running
      }
    }
  }
}
