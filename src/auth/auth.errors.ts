import { AppError } from '../common/errors/app-error.js';
import { ErrorCode } from '../common/errors/error-code.js';

/** Why authentication failed; logged and audited, while the client sees a 401 with a short detail. */
export enum AuthErrorReason {
  MissingToken = 'missing_token',
  InvalidToken = 'invalid_token',
  TokenExpired = 'token_expired',
  WrongTokenType = 'wrong_token_type',
  SessionRevoked = 'session_revoked',
  UserInactive = 'user_inactive',
  RefreshReuse = 'refresh_token_reuse',
}

export class AuthError extends AppError {
  constructor(
    readonly reason: AuthErrorReason,
    detail: string,
  ) {
    super(ErrorCode.Unauthorized, detail, { headers: { 'WWW-Authenticate': 'Bearer' }, extra: { reason } });
  }
}
