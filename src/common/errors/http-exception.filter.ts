import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { ThrottlerException } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { AppError, FieldError } from './app-error.js';
import { isDatabaseUnavailableError, isDuplicateKeyError } from './database-errors.js';
import { codeForStatus, CommonError } from './error-code.js';
import type { ErrorBodyDto } from './error-body.dto.js';
import { RouteTable, requestPath } from './route-table.js';

export interface Normalised {
  status: number;
  code: string;
  detail: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
  extra?: Record<string, unknown>;
}

/** body-parser marks its own errors with `type` and `status`. */
interface BodyParserError extends Error {
  type: string;
  status: number;
}

function isBodyParserError(error: unknown): error is BodyParserError {
  return (
    error instanceof Error &&
    typeof (error as Partial<BodyParserError>).type === 'string' &&
    typeof (error as Partial<BodyParserError>).status === 'number'
  );
}

function httpExceptionDetail(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (typeof message === 'string') return message;
  if (Array.isArray(message)) return message.map(String).join('; ');
  return exception.message;
}

/** An AppError as the one error body's parts. */
export function normaliseAppError(error: AppError): Normalised {
  return {
    status: error.status,
    code: error.code,
    detail: error.detail,
    errors: error.options.errors,
    headers: error.options.headers,
    extra: error.options.extra,
  };
}

/** Writes the one error body. Also used outside Nest's router (see `routeMissFallback`). */
export function sendError(request: Request, response: Response, error: Normalised): void {
  if (response.headersSent) {
    response.end();
    return;
  }
  const body: ErrorBodyDto & Record<string, unknown> = {
    detail: error.detail,
    code: error.code,
    ...(error.errors ? { errors: error.errors } : {}),
    ...(error.extra ?? {}),
    path: requestPath(request),
    timestamp: new Date().toISOString(),
    request_id: typeof request.id === 'string' ? request.id : '',
  };
  for (const [name, value] of Object.entries(error.headers ?? {})) response.setHeader(name, value);
  response.status(error.status).json(body);
}

/**
 * The last Express handler, for requests Nest's own not-found handlers do not see (paths outside
 * the API prefix and its exclusions): the JSON 405 or 404 too.
 */
export function routeMissFallback(routes: RouteTable): (request: Request, response: Response) => void {
  return (request, response) => sendError(request, response, routes.miss(request));
}

/**
 * Turns everything thrown while serving an HTTP request into the one error body
 * `{detail, code, errors?, path, timestamp, request_id}`. Unknown errors become a 500 whose
 * detail reveals nothing; the stack goes to the log only.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpExceptionFilter');

  /** `routes` tells a wrong method (405) from an unknown path (404) when Nest's router found no handler. */
  constructor(private readonly routes: RouteTable) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const context = host.switchToHttp();
    const request = context.getRequest<Request>();
    const response = context.getResponse<Response>();
    const normalised = this.normalise(exception, request);

    // Redis being unreachable is reported once by what noticed it (rate limits), not per request.
    const outage = normalised.code === CommonError.DatabaseUnavailable.code || normalised.code === CommonError.SharedStateUnavailable.code;
    if (normalised.status >= 500 && !outage) {
      this.logger.error({ err: exception }, 'Unhandled error while serving a request');
    } else if (normalised.code === CommonError.DatabaseUnavailable.code) {
      this.logger.warn(`Database unavailable: ${exception instanceof Error ? exception.message : String(exception)}`);
    }
    sendError(request, response, normalised);
  }

  private normalise(thrown: unknown, request: Request): Normalised {
    // The Express adapter wraps body-parser's errors in an HttpException; judge them by the original.
    const exception = thrown instanceof HttpException && isBodyParserError(thrown.cause) ? thrown.cause : thrown;
    if (exception instanceof AppError) return normaliseAppError(exception);
    if (exception instanceof ThrottlerException) {
      const retryAfter = request.res?.getHeader('Retry-After');
      const seconds = Number(retryAfter);
      return {
        status: 429,
        code: CommonError.RateLimited.code,
        detail:
          Number.isFinite(seconds) && seconds > 0 ? `Too many requests; try again in ${seconds} s` : 'Too many requests; try again later',
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === 404 && /^Cannot [A-Z]+ /.test(exception.message)) return this.routes.miss(request);
      return { status, code: codeForStatus(status), detail: httpExceptionDetail(exception) };
    }
    if (isBodyParserError(exception)) {
      if (exception.type === 'entity.parse.failed') {
        return { status: 400, code: CommonError.MalformedJson.code, detail: 'The request body is not valid JSON' };
      }
      if (exception.type === 'entity.too.large') {
        return { status: 413, code: CommonError.PayloadTooLarge.code, detail: 'The request body is too large' };
      }
      return { status: exception.status, code: codeForStatus(exception.status), detail: 'The request body could not be read' };
    }
    if (isDatabaseUnavailableError(exception)) {
      return {
        status: 503,
        code: CommonError.DatabaseUnavailable.code,
        detail: 'The database is unavailable right now; please try again shortly',
        headers: { 'Retry-After': '5' },
      };
    }
    if (isDuplicateKeyError(exception)) {
      // A safety net: modules translate their own unique-index errors into specific messages.
      return { status: 409, code: CommonError.Conflict.code, detail: 'A resource with the same unique value already exists' };
    }
    return { status: 500, code: CommonError.Internal.code, detail: 'Internal server error' };
  }
}
