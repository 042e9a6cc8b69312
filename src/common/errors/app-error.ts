import type { ErrorKind } from './error-code.js';

export interface FieldError {
  field: string;
  message: string;
  code?: string;
}

/**
 * The one exception type modules throw. `detail` is shown to people; `kind` (one of a module's
 * declared codes, see defineErrorCodes) is for programs and sets the HTTP status.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(
    readonly kind: ErrorKind,
    readonly detail: string,
    readonly options: { errors?: FieldError[]; headers?: Record<string, string>; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = kind.code;
    this.status = kind.status;
  }
}
