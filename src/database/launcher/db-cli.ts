/**
 * `npm run db`: runs the embedded development database on its own.
 *
 *   tsx src/database/launcher/db-cli.ts [--data-dir DIR] [--port PORT] [--postgresql-url URL] [--build-only]
 *
 * --build-only builds (or finds) the cached tools/devdb binary and prints its path.
 * Otherwise the database listens on 127.0.0.1:27017 (by default) with its data in
 * ${DATA_DIR:-./.data}/db until Ctrl-C.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { waitForSignal } from '../../common/lifecycle/wait-for-signal.js';
import { launchDatabase } from './database-launcher.js';
import { ensureDevdbBinary } from './devdb-binary.js';

const DEFAULT_PORT = 27017;

interface CliOptions {
  dataDir: string;
  port: number;
  postgresqlUrl: string | undefined;
  buildOnly: boolean;
}

function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      'postgresql-url': { type: 'string' },
      'build-only': { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });

  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`Invalid --port ${String(values.port)}`);
  }

  const dataRoot = env.DATA_DIR !== undefined && env.DATA_DIR !== '' ? env.DATA_DIR : './.data';
  return {
    dataDir: path.resolve(values['data-dir'] ?? path.join(dataRoot, 'db')),
    port,
    postgresqlUrl: values['postgresql-url'],
    buildOnly: values['build-only'],
  };
}

async function main(): Promise<void> {
  const options = parseCli(process.argv.slice(2), process.env);

  if (options.buildOnly) {
    process.stdout.write(`${await ensureDevdbBinary()}\n`);
    return;
  }

  const signal = waitForSignal();
  const database = await launchDatabase({
    dataDir: options.dataDir,
    port: options.port,
    postgresqlUrl: options.postgresqlUrl,
  });
  process.stdout.write(`${database.uri}\n`);
  console.error('Press Ctrl-C to stop.');

  console.error(`Received ${await signal}, stopping the database…`);
  await database.stop();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
