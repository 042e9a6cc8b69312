/**
 * Vitest globalSetup: one database for the whole test run.
 *
 * Honours MONGODB_URI (an existing MongoDB); otherwise launches the embedded FerretDB
 * (tools/devdb) on a free port with a temporary data directory that teardown removes.
 * The server URI (without database name) reaches the tests as process.env.MONGODB_URI,
 * which forked workers inherit, and as `inject('mongodbUri')`.
 * Each test file then takes its own database name: see createTestDatabase() in ./database.ts.
 */
import type { TestProject } from 'vitest/node';

import { launchDatabase, type LaunchedDatabase } from '../../src/database/launcher/database-launcher.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server URI of the test database, without database name. */
    mongodbUri: string;
  }
}

let database: LaunchedDatabase | null = null;

function log(message: string): void {
  process.stderr.write(`[test-db] ${message}\n`);
}

export async function setup(project: TestProject): Promise<void> {
  database = await launchDatabase({ mongodbUri: process.env.MONGODB_URI, log });
  process.env.MONGODB_URI = database.uri;
  project.provide('mongodbUri', database.uri);
}

export async function teardown(): Promise<void> {
  const running = database;
  database = null;
  await running?.stop();
}
