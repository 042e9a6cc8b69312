import { HttpStatus } from '@nestjs/common';

/**
 * Machine-readable error codes shared by every module. Each maps to one HTTP status; the WebSocket
 * gateway reuses the same codes as close reasons. Modules add their own codes here so the table of
 * statuses stays in one place.
 */
export enum ErrorCode {
  BadRequest = 'bad_request',
  MalformedJson = 'malformed_json',
  ValidationFailed = 'validation_failed',
  Unauthorized = 'unauthorized',
  Forbidden = 'forbidden',
  NotFound = 'not_found',
  MethodNotAllowed = 'method_not_allowed',
  Conflict = 'conflict',
  PayloadTooLarge = 'payload_too_large',
  UnsupportedMediaType = 'unsupported_media_type',
  Locked = 'locked',
  RateLimited = 'rate_limited',
  Internal = 'internal_error',
  DatabaseUnavailable = 'database_unavailable',
  ServiceUnavailable = 'service_unavailable',
}

export const ERROR_STATUS: Record<ErrorCode, HttpStatus> = {
  [ErrorCode.BadRequest]: HttpStatus.BAD_REQUEST,
  [ErrorCode.MalformedJson]: HttpStatus.BAD_REQUEST,
  [ErrorCode.ValidationFailed]: HttpStatus.UNPROCESSABLE_ENTITY,
  [ErrorCode.Unauthorized]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.Forbidden]: HttpStatus.FORBIDDEN,
  [ErrorCode.NotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.MethodNotAllowed]: HttpStatus.METHOD_NOT_ALLOWED,
  [ErrorCode.Conflict]: HttpStatus.CONFLICT,
  [ErrorCode.PayloadTooLarge]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.UnsupportedMediaType]: HttpStatus.UNSUPPORTED_MEDIA_TYPE,
  [ErrorCode.Locked]: HttpStatus.LOCKED,
  [ErrorCode.RateLimited]: HttpStatus.TOO_MANY_REQUESTS,
  [ErrorCode.Internal]: HttpStatus.INTERNAL_SERVER_ERROR,
  [ErrorCode.DatabaseUnavailable]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.ServiceUnavailable]: HttpStatus.SERVICE_UNAVAILABLE,
};

/** The code to use for an HTTP status that reached the filter without one of ours. */
export function codeForStatus(status: number): ErrorCode {
  const found = (Object.entries(ERROR_STATUS) as [ErrorCode, HttpStatus][]).find(([, s]) => Number(s) === status);
  if (found) return found[0];
  if (status >= 500) return ErrorCode.Internal;
  return ErrorCode.BadRequest;
}
