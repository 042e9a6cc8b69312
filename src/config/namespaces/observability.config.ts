import type { LogLevel } from '../environment.schema.js';
import { defineNamespace } from './define-namespace.js';

/** Logs and metrics: LOG_LEVEL, METRICS_TOKEN. */
export interface ObservabilityConfig {
  readonly logLevel: LogLevel;
  /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
  readonly metricsToken: string | null;
}

export const observabilityConfig = defineNamespace('observability', (env): ObservabilityConfig => ({
  logLevel: env.LOG_LEVEL ?? (env.NODE_ENV === 'test' ? 'warn' : 'info'),
  metricsToken: env.METRICS_TOKEN ?? null,
}));
