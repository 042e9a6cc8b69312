import { IncomingMessage } from 'node:http';
import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import pino, { type DestinationStream } from 'pino';
import type { Options } from 'pino-http';
import type { PrettyOptions } from 'pino-pretty';
import type { LoggingConfig } from '../../config/namespaces/logging.config.js';
import type { ObservabilityConfig } from '../../config/namespaces/observability.config.js';
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
 * pino-http's options: the level, redaction, the request id, which requests are logged and at which
 * level, and what a request line carries (method, redacted URL, client IP and user agent only: no
 * bodies, no credentials). The same whatever the format: redaction happens before a line is
 * written, so the pretty printer only ever sees redacted objects.
 */
export function pinoHttpOptions(config: ObservabilityConfig): Options {
  return {
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
  };
}

/**
 * `[Context] message`, and for a request line `GET /api/v1/… 404 3ms`; the fields shown this way are
 * left out of the object printed under the line (errors, with their stack, still are printed).
 */
const PRETTY_OPTIONS: PrettyOptions = {
  translateTime: 'SYS:HH:MM:ss.l',
  ignore: 'pid,hostname,context,req,res,responseTime',
  messageFormat: (log, messageKey, _level, { colors }) => {
    const context = typeof log.context === 'string' ? colors.yellow(`[${log.context}] `) : '';
    const req = log.req as { method?: string; url?: string } | undefined;
    const res = log.res as { status?: number } | undefined;
    const text = log[messageKey];
    const message = typeof text === 'string' ? text : '';
    if (!req || !res) return `${context}${message}`;
    const took = typeof log.responseTime === 'number' ? ` ${colors.gray(`${log.responseTime}ms`)}` : '';
    return `${context}${req.method ?? ''} ${req.url ?? ''} ${String(res.status)}${took}`;
  },
};

/**
 * A destination that writes each JSON line pino produces as pino-pretty's readable (and, on a
 * terminal, colored) line to `out` (stdout by default), synchronously, so nothing is lost when the
 * process exits. pino-pretty is a development dependency, loaded only here: null when it is not
 * installed (a production install never gets this far, see validateEnvironment).
 */
export async function prettyDestination(out?: DestinationStream): Promise<DestinationStream | null> {
  let prettyFactory: typeof import('pino-pretty').prettyFactory;
  try {
    ({ prettyFactory } = (await import('pino-pretty')).default);
  } catch {
    return null;
  }
  const prettify = prettyFactory(PRETTY_OPTIONS);
  const target = out ?? pino.destination({ dest: 1, sync: true });
  return { write: (line: string) => target.write(prettify(line)) };
}

/** nestjs-pino's parameters: JSON lines on stdout, or (LOG_FORMAT=pretty) the same lines made readable. */
export async function loggerParams(observability: ObservabilityConfig, logging: LoggingConfig): Promise<Params> {
  const params = { forRoutes: [{ path: '{*path}', method: RequestMethod.ALL }] };
  const options = pinoHttpOptions(observability);
  if (logging.format === 'json') return { ...params, pinoHttp: options };
  const pretty = await prettyDestination();
  if (pretty) return { ...params, pinoHttp: [options, pretty] };
  process.stderr.write('LOG_FORMAT=pretty needs pino-pretty (a development dependency), which is not installed: logging JSON\n');
  return { ...params, pinoHttp: options };
}
