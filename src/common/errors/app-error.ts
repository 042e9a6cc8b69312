import { ERROR_STATUS, ErrorCode } from './error-code.js';

export interface FieldError {
  field: string;
  message: string;
  code?: string;
}

/**
 * The one exception type modules throw. `detail` is shown to people; `code` is for programs.
 * Modules may subclass it (e.g. `class AuthError extends AppError`) to group their codes.
 */
export class AppError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly options: { errors?: FieldError[]; headers?: Record<string, string>; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = ERROR_STATUS[code];
  }
}
