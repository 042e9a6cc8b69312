import { HttpStatus } from '@nestjs/common';

/** One kind of error: the stable `code` programs branch on, and the HTTP status it answers with. */
export interface ErrorKind<Code extends string = string> {
  readonly code: Code;
  readonly status: HttpStatus;
}

type ErrorTable = Record<string, readonly [code: string, status: HttpStatus]>;
type ErrorKinds<T extends ErrorTable> = { readonly [K in keyof T]: ErrorKind<T[K][0]> };

const registry = new Map<string, { status: HttpStatus; module: string }>();

/**
 * Declares a module's error codes, each with the one HTTP status it answers with. Every module
 * keeps its own table (`auth.errors.ts`, `environments.errors.ts`, …); a code is declared once in
 * the whole application (a second declaration throws at import).
 *
 * ```ts
 * export const EnvironmentError = defineErrorCodes('environments', {
 *   NotFound: ['environment_not_found', HttpStatus.NOT_FOUND],
 * });
 * throw new AppError(EnvironmentError.NotFound, 'Environment not found');
 * ```
 */
export function defineErrorCodes<const T extends ErrorTable>(module: string, table: T): ErrorKinds<T> {
  const kinds: Record<string, ErrorKind> = {};
  for (const [name, [code, status]] of Object.entries(table)) {
    const known = registry.get(code);
    if (known && (known.module !== module || known.status !== status)) {
      throw new Error(`Error code ${code} is declared twice (${known.module} and ${module})`);
    }
    registry.set(code, { status, module });
    kinds[name] = Object.freeze({ code, status });
  }
  return Object.freeze(kinds) as ErrorKinds<T>;
}

/** Every code declared so far, with its status and module (for docs and their test). */
export function declaredErrorCodes(): ReadonlyMap<string, { status: HttpStatus; module: string }> {
  return registry;
}

/** Codes of no module in particular: protocol, validation, routing, availability. */
export const CommonError = defineErrorCodes('common', {
  BadRequest: ['bad_request', HttpStatus.BAD_REQUEST],
  MalformedJson: ['malformed_json', HttpStatus.BAD_REQUEST],
  ValidationFailed: ['validation_failed', HttpStatus.UNPROCESSABLE_ENTITY],
  Unauthorized: ['unauthorized', HttpStatus.UNAUTHORIZED],
  Forbidden: ['forbidden', HttpStatus.FORBIDDEN],
  NotFound: ['not_found', HttpStatus.NOT_FOUND],
  MethodNotAllowed: ['method_not_allowed', HttpStatus.METHOD_NOT_ALLOWED],
  Conflict: ['conflict', HttpStatus.CONFLICT],
  PayloadTooLarge: ['payload_too_large', HttpStatus.PAYLOAD_TOO_LARGE],
  UnsupportedMediaType: ['unsupported_media_type', HttpStatus.UNSUPPORTED_MEDIA_TYPE],
  RateLimited: ['rate_limited', HttpStatus.TOO_MANY_REQUESTS],
  Internal: ['internal_error', HttpStatus.INTERNAL_SERVER_ERROR],
  DatabaseUnavailable: ['database_unavailable', HttpStatus.SERVICE_UNAVAILABLE],
  ServiceUnavailable: ['service_unavailable', HttpStatus.SERVICE_UNAVAILABLE],
  NotReady: ['not_ready', HttpStatus.SERVICE_UNAVAILABLE],
  SharedStateUnavailable: ['shared_state_unavailable', HttpStatus.SERVICE_UNAVAILABLE],
  MetricsTokenRequired: ['metrics_token_required', HttpStatus.UNAUTHORIZED],
});

/** The generic code of each status Nest's own exceptions (and other libraries') may carry. */
const GENERIC: ReadonlyMap<number, ErrorKind> = new Map(
  [
    CommonError.BadRequest,
    CommonError.Unauthorized,
    CommonError.Forbidden,
    CommonError.NotFound,
    CommonError.MethodNotAllowed,
    CommonError.Conflict,
    CommonError.PayloadTooLarge,
    CommonError.UnsupportedMediaType,
    CommonError.ValidationFailed,
    CommonError.RateLimited,
    CommonError.Internal,
    CommonError.ServiceUnavailable,
  ].map((kind) => [Number(kind.status), kind]),
);

/** The code for an HTTP status that reached the filter without one of ours. */
export function codeForStatus(status: number): string {
  return GENERIC.get(status)?.code ?? (status >= 500 ? CommonError.Internal.code : CommonError.BadRequest.code);
}
