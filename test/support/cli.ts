import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './server-process.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real admin CLI (dist/cli.js, built by `npm test` or `npm run build`) against a test
 * database, in a data directory of its own (removed afterwards) unless `env` names one.
 */
export function runCli(
  database: { serverUri: string; name: string },
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'devpocket-cli-'));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'cli.js'), ...args], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        MONGODB_URI: database.serverUri,
        MONGODB_DB_NAME: database.name,
        JWT_SECRET: 'cli-test-secret-0123456789abcdef0123456789',
        LOG_LEVEL: 'warn',
        DATA_DIR: dataDir,
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => {
      rmSync(dataDir, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}
