import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { inject } from 'vitest';

import { withDatabaseName } from '../../src/database/launcher/mongodb-uri.js';

/** A database reserved for one test file. */
export interface TestDatabase {
  /** Connection string including the database name. */
  uri: string;
  /** Connection string of the server, without database name (the run's MONGODB_URI). */
  serverUri: string;
  name: string;
  /** Drops the database and closes the client used for it. */
  drop(): Promise<void>;
}

/** FerretDB v1 accepts [a-zA-Z0-9_-]; MongoDB limits names to 63 bytes. */
const MAX_PREFIX_LENGTH = 40;

/** Server URI of the run's database (set by test/support/global-setup.ts). */
export function testServerUri(): string {
  const uri = inject('mongodbUri') ?? process.env.MONGODB_URI;
  if (uri === undefined || uri === '') {
    throw new Error('No test database: run the tests through vitest with test/support/global-setup.ts as globalSetup');
  }
  return uri;
}

/** `t_<prefix>_<12 hex>`: unique per call, at most 55 characters. */
export function testDatabaseName(prefix: string): string {
  const safePrefix = prefix.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, MAX_PREFIX_LENGTH);
  return `t_${safePrefix}_${randomBytes(6).toString('hex')}`;
}

/** Reserves a fresh database name on the run's database server. */
export function createTestDatabase(prefix = 'test'): TestDatabase {
  const name = testDatabaseName(prefix);
  const serverUri = testServerUri();
  const uri = withDatabaseName(serverUri, name);

  return {
    uri,
    serverUri,
    name,
    drop: async () => {
      const client = new MongoClient(uri);
      try {
        await client.db(name).dropDatabase();
      } finally {
        await client.close();
      }
    },
  };
}
