import { spawn } from 'node:child_process';
import { existsSync, watch } from 'node:fs';
import { constants } from 'node:os';
import { join, relative } from 'node:path';
import { buildConsole, CONSOLE_OUT, CONSOLE_SOURCE, ROOT } from './build-console.js';

/**
 * `tsx scripts/console-dev.ts <command…>`: runs the command (`nest start --watch` for
 * `npm run start:dev`) and keeps the browser console built in dist/console/ meanwhile:
 *
 * - it builds the console at once, and again whenever dist/console/index.html is missing (Nest
 *   empties dist/ before it compiles, and `npm run build` or `nest build` may run beside it);
 * - with `--watch` it rebuilds when a file under console/ changes (the server re-reads
 *   index.html, a reload of the page shows the change).
 *
 * It exits with the command's exit code, and passes SIGTERM and SIGHUP on to it (Ctrl-C reaches
 * both through the terminal).
 */

const POLL_MS = 500;

function log(message: string): void {
  process.stdout.write(`[console] ${message}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const watchSources = args[0] === '--watch';
  const command = watchSources ? args.slice(1) : args;
  if (command.length === 0) {
    process.stderr.write('usage: tsx scripts/console-dev.ts [--watch] <command> [args…]\n');
    process.exit(2);
  }

  let building = false;
  let again = false;
  const rebuild = async (why: string): Promise<void> => {
    if (building) {
      again = true;
      return;
    }
    building = true;
    try {
      do {
        again = false;
        const started = Date.now();
        try {
          await buildConsole({ minify: false });
          log(`built into ${relative(ROOT, CONSOLE_OUT)}/ (${why}, ${Date.now() - started} ms)`);
        } catch (error) {
          log(`build failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      } while (again);
    } finally {
      building = false;
    }
  };

  await rebuild('start');
  const index = join(CONSOLE_OUT, 'index.html');
  const poll = setInterval(() => {
    if (!building && !existsSync(index)) void rebuild('dist/console was removed');
  }, POLL_MS);

  let debounce: NodeJS.Timeout | null = null;
  const watcher = watchSources
    ? watch(CONSOLE_SOURCE, { recursive: true }, (_event, file) => {
        if (debounce) clearTimeout(debounce);
        debounce = setTimeout(() => void rebuild(`${file ?? 'a file'} changed`), 100);
      })
    : null;

  const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env: process.env });
  const forward = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null) child.kill(signal);
  };
  process.on('SIGTERM', () => forward('SIGTERM'));
  process.on('SIGHUP', () => forward('SIGHUP'));
  process.on('SIGINT', () => undefined); // the terminal sends it to the command too
  child.on('error', (error) => {
    log(`could not start ${command[0]}: ${error.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    clearInterval(poll);
    watcher?.close();
    process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
  });
}

void main();
