import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { configureApp, NEST_APPLICATION_OPTIONS } from './app.setup.js';
import { ProcessLifecycle } from './common/lifecycle/process-lifecycle.js';
import { loadOrExit } from './config/load-or-exit.js';
import { resolveDatabase } from './database/resolve-database.js';

const logger = new Logger('Bootstrap');

async function bootstrap(): Promise<void> {
  const { configuration, embedded } = await resolveDatabase(loadOrExit(), (message) => logger.log(message));
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
