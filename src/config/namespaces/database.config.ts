import { defineNamespace } from './define-namespace.js';

/** MongoDB: MONGODB_URI, MONGODB_DB_NAME, MONGODB_TIMEOUT_MS, MONGODB_CONNECT_RETRIES. */
export interface DatabaseConfig {
  /**
   * Connection string without database name; null means "start the embedded database" (never in
   * production), which the entry points do before the application starts (`resolveDatabase`).
   */
  readonly uri: string | null;
  readonly dbName: string;
  /** Server selection, connect and buffering timeout: how long a request waits for a missing database before 503. */
  readonly timeoutMs: number;
  readonly connectRetries: number;
}

export const databaseConfig = defineNamespace('database', (env): DatabaseConfig => ({
  uri: env.MONGODB_URI ?? null,
  dbName: env.MONGODB_DB_NAME ?? 'devpocket',
  timeoutMs: env.MONGODB_TIMEOUT_MS ?? 5_000,
  connectRetries: env.MONGODB_CONNECT_RETRIES ?? 5,
}));
