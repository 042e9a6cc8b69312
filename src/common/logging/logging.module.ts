import { IncomingMessage } from 'node:http';
import { Module, RequestMethod } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { type ObservabilityConfig, observabilityConfig } from '../../config/namespaces/observability.config.js';
import { REDACT_PATHS, REDACTED, redactUrl } from './redaction.js';

const QUIET_PATHS = /^\/(health|metrics)(\/|\?|$)/;

interface SerializedRequest {
  id: unknown;
  method: string;
  url: string;
  remoteAddress?: string;
  headers?: Record<string, unknown>;
  raw?: IncomingMessage & { ip?: string };
}

/**
 * Structured JSON logs (pino) with the request id on every line. Request logs carry method,
 * redacted URL, client IP and user agent only: no bodies, no credentials.
 */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [observabilityConfig.KEY],
      useFactory: (config: ObservabilityConfig) => ({
        forRoutes: [{ path: '{*path}', method: RequestMethod.ALL }],
        pinoHttp: {
          level: config.logLevel,
          redact: { paths: REDACT_PATHS, censor: REDACTED },
          genReqId: (req) => req.id ?? 'unknown',
          autoLogging: { ignore: (req) => QUIET_PATHS.test(req.url ?? '') },
          customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
          serializers: {
            req: (req: SerializedRequest) => ({
              id: req.id,
              method: req.method,
              url: redactUrl(req.url),
              ip: req.raw?.ip ?? req.remoteAddress,
              user_agent: req.headers?.['user-agent'],
            }),
            res: (res: { statusCode: number }) => ({ status: res.statusCode }),
          },
        },
      }),
    }),
  ],
})
export class LoggingModule {}
