import type { ModuleMetadata } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test, TestingModuleBuilder } from '@nestjs/testing';
import { AppModule } from '../../src/app.module.js';
import { configureApp, NEST_APPLICATION_OPTIONS } from '../../src/app.setup.js';
import { Configuration, loadConfiguration } from '../../src/config/configuration.js';
import { createTestDatabase, TestDatabase } from './database.js';
import { prepareTestRuntime } from './runtime-under-test.js';

export interface TestApp {
  app: NestExpressApplication;
  configuration: Configuration;
  /** http://127.0.0.1:PORT */
  baseUrl: string;
  database: TestDatabase;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** Extra environment variables on top of the test defaults. */
  env?: Record<string, string>;
  /** Extra modules composed into the app (test-only routes live in test/, never in src/). */
  imports?: ModuleMetadata['imports'];
  /** Swap providers, e.g. the clock: `(b) => b.overrideProvider(Clock).useValue(clock)`. */
  override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
  /** Use this database instead of a fresh one (the caller drops it). */
  database?: TestDatabase;
}

export const TEST_JWT_SECRET = 'test-only-jwt-secret-4f9c2b7e1d8a6c3b5e0f9a7d2c4b6e8f';

/**
 * Boots the real application (same module graph, same configureApp as production) against this
 * file's own database, listening on a free port.
 */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.database ?? createTestDatabase();
  const scratchDir = mkdtempSync(join(tmpdir(), 'devpocket-test-'));
  const runtime = await prepareTestRuntime();
  const configuration = loadConfiguration({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    MONGODB_URI: database.serverUri,
    MONGODB_DB_NAME: database.name,
    MONGODB_TIMEOUT_MS: '2000',
    DATA_DIR: scratchDir,
    ...runtime.env,
    ...options.env,
  });
  let builder = Test.createTestingModule({ imports: [AppModule.forRoot(configuration), ...(options.imports ?? [])] });
  if (options.override) builder = options.override(builder);
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication<NestExpressApplication>(NEST_APPLICATION_OPTIONS);
  await configureApp(app, configuration);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address();
  if (address === null || typeof address === 'string') throw new Error('test app is not listening on TCP');
  return {
    app,
    configuration,
    baseUrl: `http://127.0.0.1:${address.port}`,
    database,
    close: async () => {
      await app.close();
      if (!options.database) await database.drop();
      await runtime.cleanup();
      rmSync(scratchDir, { recursive: true, force: true });
    },
  };
}
