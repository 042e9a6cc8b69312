import { HttpStatus } from '@nestjs/common';
import { AppError } from '../common/errors/app-error.js';
import { defineErrorCodes } from '../common/errors/error-code.js';

/** Why authentication failed (the `code` of a 401, also sent as `reason` for older clients). */
export const AuthErrorReason = defineErrorCodes('auth', {
  MissingToken: ['missing_token', HttpStatus.UNAUTHORIZED],
  InvalidToken: ['invalid_token', HttpStatus.UNAUTHORIZED],
  TokenExpired: ['token_expired', HttpStatus.UNAUTHORIZED],
  WrongTokenType: ['wrong_token_type', HttpStatus.UNAUTHORIZED],
  SessionRevoked: ['session_revoked', HttpStatus.UNAUTHORIZED],
  UserInactive: ['user_inactive', HttpStatus.UNAUTHORIZED],
  RefreshReuse: ['refresh_token_reuse', HttpStatus.UNAUTHORIZED],
});
export type AuthErrorReason = (typeof AuthErrorReason)[keyof typeof AuthErrorReason];

/** Every other refusal of the accounts API. */
export const AccountsError = defineErrorCodes('auth', {
  InvalidCredentials: ['invalid_credentials', HttpStatus.UNAUTHORIZED],
  AccountDisabled: ['account_disabled', HttpStatus.FORBIDDEN],
  AccountLocked: ['account_locked', HttpStatus.LOCKED],
  AdminRequired: ['admin_required', HttpStatus.FORBIDDEN],
  AccountExists: ['account_exists', HttpStatus.CONFLICT],
  GoogleTokenInvalid: ['google_token_invalid', HttpStatus.UNAUTHORIZED],
  GoogleEmailUnverified: ['google_email_unverified', HttpStatus.UNAUTHORIZED],
  GoogleAccountGone: ['google_account_gone', HttpStatus.UNAUTHORIZED],
  GoogleUsernameUnavailable: ['google_username_unavailable', HttpStatus.CONFLICT],
  GoogleNotConfigured: ['google_not_configured', HttpStatus.SERVICE_UNAVAILABLE],
  GoogleUnreachable: ['google_unreachable', HttpStatus.SERVICE_UNAVAILABLE],
  GoogleWebNotConfigured: ['google_web_not_configured', HttpStatus.NOT_FOUND],
  GoogleWebStateInvalid: ['google_web_state_invalid', HttpStatus.FORBIDDEN],
  GoogleWebDenied: ['google_web_denied', HttpStatus.UNAUTHORIZED],
  GoogleWebCodeInvalid: ['google_web_code_invalid', HttpStatus.BAD_REQUEST],
  CurrentPasswordIncorrect: ['current_password_incorrect', HttpStatus.BAD_REQUEST],
  ResetTokenInvalid: ['reset_token_invalid', HttpStatus.BAD_REQUEST],
  AlreadyVerified: ['already_verified', HttpStatus.CONFLICT],
  CodeSentRecently: ['code_sent_recently', HttpStatus.TOO_MANY_REQUESTS],
  VerificationCodeMissing: ['verification_code_missing', HttpStatus.BAD_REQUEST],
  VerificationCodeExpired: ['verification_code_expired', HttpStatus.BAD_REQUEST],
  VerificationCodeLocked: ['verification_code_locked', HttpStatus.BAD_REQUEST],
  VerificationCodeIncorrect: ['verification_code_incorrect', HttpStatus.BAD_REQUEST],
  VerificationCodeUsed: ['verification_code_used', HttpStatus.BAD_REQUEST],
});

/** A 401: the code says why; `reason` repeats it (clients written before the codes read that). */
export class AuthError extends AppError {
  constructor(
    readonly reason: AuthErrorReason,
    detail: string,
  ) {
    super(reason, detail, { headers: { 'WWW-Authenticate': 'Bearer' }, extra: { reason: reason.code } });
  }
}
