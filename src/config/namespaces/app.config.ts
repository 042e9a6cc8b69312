import { isAbsolute, resolve } from 'node:path';
import type { EnvironmentSchema, NodeEnvironment } from '../environment.schema.js';
import { defineNamespace } from './define-namespace.js';

/** The process itself: NODE_ENV, HOST, PORT, DATA_DIR, SWAGGER_ENABLED, SHUTDOWN_TIMEOUT_MS. */
export interface AppConfig {
  readonly nodeEnv: NodeEnvironment;
  readonly isProduction: boolean;
  readonly host: string;
  readonly port: number;
  /** Absolute path of the directory holding local state (embedded database, outbox, environments). */
  readonly dataDir: string;
  readonly swaggerEnabled: boolean;
  readonly shutdownTimeoutMs: number;
}

/** DATA_DIR (default `./.data`) as an absolute path; the auth, mail and runtime namespaces keep their state under it. */
export function dataDirOf(env: EnvironmentSchema, cwd: string): string {
  const setting = env.DATA_DIR ?? './.data';
  return isAbsolute(setting) ? setting : resolve(cwd, setting);
}

export const appConfig = defineNamespace('app', (env, cwd): AppConfig => ({
  nodeEnv: env.NODE_ENV ?? 'development',
  isProduction: env.NODE_ENV === 'production',
  host: env.HOST ?? '0.0.0.0',
  port: env.PORT ?? 8000,
  dataDir: dataDirOf(env, cwd),
  swaggerEnabled: env.SWAGGER_ENABLED ?? true,
  shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS ?? 10_000,
}));
