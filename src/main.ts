import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { join } from 'node:path';
import { AppModule } from './app.module.js';
import { configureApp, NEST_APPLICATION_OPTIONS } from './app.setup.js';
import { ProcessLifecycle } from './common/lifecycle/process-lifecycle.js';
import { Configuration, ConfigurationError, loadConfiguration } from './config/configuration.js';
import { launchDatabase, LaunchedDatabase } from './database/launcher/database-launcher.js';

const logger = new Logger('Bootstrap');

function loadOrExit(): Configuration {
  try {
    return loadConfiguration(process.env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
}

/** Outside production without MONGODB_URI, starts the embedded database with its data under DATA_DIR/db. */
async function resolveDatabase(configuration: Configuration): Promise<{ configuration: Configuration; embedded: LaunchedDatabase | null }> {
  if (configuration.database.uri !== null) return { configuration, embedded: null };
  const embedded = await launchDatabase({
    dataDir: join(configuration.app.dataDir, 'db'),
    log: (message: string) => logger.log(message),
  });
  return { configuration: { ...configuration, database: { ...configuration.database, uri: embedded.uri } }, embedded };
}

async function bootstrap(): Promise<void> {
  const { configuration, embedded } = await resolveDatabase(loadOrExit());
  try {
    const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(configuration), NEST_APPLICATION_OPTIONS);
    await configureApp(app, configuration);
    if (embedded) app.get(ProcessLifecycle).onShutdown(() => embedded.stop());
    await app.listen(configuration.app.port, configuration.app.host);
    logger.log(`DevPocket Server listening on ${await app.getUrl()} (API under /api/v1, docs at /docs)`);
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}

void bootstrap().catch((error: unknown) => {
  logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
