import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface TemporaryPostgres {
  url: string;
  stop(): Promise<void>;
}

/** PostgreSQL refuses to run as root: when we are root, its programs run as the `postgres` user. */
function postgresUser(): { uid: number; gid: number } | Record<string, never> {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

function run(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: 'ignore', ...postgresUser() });
}

/**
 * A throwaway PostgreSQL cluster (Debian's postgresql package) on a Unix socket and a loopback
 * port, for FerretDB's PostgreSQL backend: it pushes equality filters down, where the SQLite
 * backend scans whole collections, so benchmark figures are not dominated by the test database.
 */
export async function startPostgres(port: number): Promise<TemporaryPostgres | null> {
  if (!existsSync(join(PG_BIN, 'pg_ctl'))) return null;
  const dir = mkdtempSync(join(tmpdir(), 'devpocket-bench-pg-'));
  const user = postgresUser();
  if ('uid' in user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  run(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const server = spawn(
    join(PG_BIN, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    { stdio: 'ignore', ...user },
  );
  for (let i = 0; i < 100; i += 1) {
    try {
      run(join(PG_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q']);
      break;
    } catch {
      await delay(100);
    }
  }
  run(join(PG_BIN, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'ferretdb']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/ferretdb`,
    stop: async () => {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGINT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
