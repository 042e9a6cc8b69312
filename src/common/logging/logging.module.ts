import { Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { type LoggingConfig, loggingConfig } from '../../config/namespaces/logging.config.js';
import { type ObservabilityConfig, observabilityConfig } from '../../config/namespaces/observability.config.js';
import { loggerParams } from './log-output.js';

/**
 * Structured logs (pino) with the request id on every line: JSON by default, readable lines with
 * LOG_FORMAT=pretty (`npm run start:dev`). Request logs carry method, redacted URL, client IP and
 * user agent only: no bodies, no credentials. See `log-output.ts` and docs/operations.md.
 */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [observabilityConfig.KEY, loggingConfig.KEY],
      useFactory: (observability: ObservabilityConfig, logging: LoggingConfig) => loggerParams(observability, logging),
    }),
  ],
})
export class LoggingModule {}
