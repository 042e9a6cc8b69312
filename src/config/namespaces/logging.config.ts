import type { LogFormat } from '../environment.schema.js';
import { defineNamespace } from './define-namespace.js';

/**
 * How log lines are written: LOG_FORMAT. The level and the metrics token stay in `observability`;
 * this namespace is only the output format, which `npm run start:dev` switches to `pretty`.
 */
export interface LoggingConfig {
  /** `json` (the default, everywhere) or `pretty` (pino-pretty, development only). */
  readonly format: LogFormat;
}

export const loggingConfig = defineNamespace('logging', (env): LoggingConfig => ({
  format: env.LOG_FORMAT ?? 'json',
}));
