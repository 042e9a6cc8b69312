import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CliModule } from './cli/cli.module.js';
import { COMMANDS, HELP, UsageError } from './cli/commands.js';
import { loadOrExit } from './config/load-or-exit.js';
import { resolveDatabase } from './database/resolve-database.js';

/**
 * The admin command line (`npm run cli -- <command>`, docs/auth.md#command-line). Each command runs
 * in an application context of its own (`CliModule`) holding only what the command needs.
 */
async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help') {
    process.stdout.write(`${HELP}\n`);
    return command ? 0 : 2;
  }
  const selected = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!selected) {
    process.stderr.write(`Unknown command "${command}"\n\n${HELP}\n`);
    return 2;
  }
  const logger = new Logger('CLI');
  const { configuration, embedded } = await resolveDatabase(loadOrExit({ LOG_LEVEL: 'warn', ...process.env }), (message) =>
    logger.log(message),
  );
  const app = await NestFactory.createApplicationContext(CliModule.forCommand(configuration, selected.needs), {
    logger: ['error', 'warn'],
  });
  try {
    process.stdout.write(`${await selected.run(app, args)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  } finally {
    await app.close();
    await embedded?.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
