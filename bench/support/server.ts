import { ChildProcessWithoutNullStreams, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
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
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'main.js')], {
    cwd: REPO_ROOT,
    env: benchEnv(mongodbUri, dbName, { HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '1000000', ...env }),
    stdio: 'pipe',
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
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
