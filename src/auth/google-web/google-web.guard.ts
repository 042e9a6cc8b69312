import { ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { AuthGuard } from '@nestjs/passport';
import { AppError } from '../../common/errors/app-error.js';
import { authConfig } from '../../config/namespaces/auth.config.js';
import { AccountsError } from '../auth.errors.js';
import { GOOGLE_WEB_STRATEGY } from './google-web.strategy.js';

export const NOT_CONFIGURED_DETAIL = 'Google sign-in for the console is not configured on this server (GOOGLE_WEB_CLIENT_ID)';

/** 404 unless GOOGLE_WEB_CLIENT_ID and _SECRET are set. */
export function assertGoogleWebConfigured(config: ConfigType<typeof authConfig>): void {
  if (config.googleWeb === null) throw new AppError(AccountsError.GoogleWebNotConfigured, NOT_CONFIGURED_DETAIL);
}

/**
 * Runs GoogleWebStrategy: on the start route it redirects to Google; on the callback it checks the
 * state, exchanges the code and signs in. Passport's refusals become AppErrors with a readable
 * detail (the exception filter's uniform body); no session is used (`session: false`).
 */
@Injectable()
export class GoogleWebGuard extends AuthGuard(GOOGLE_WEB_STRATEGY) {
  constructor(@Inject(authConfig.KEY) private readonly config: ConfigType<typeof authConfig>) {
    super({ session: false });
  }

  override canActivate(context: ExecutionContext): ReturnType<ReturnType<typeof AuthGuard>['prototype']['canActivate']> {
    assertGoogleWebConfigured(this.config);
    return super.canActivate(context);
  }

  override handleRequest<TUser>(error: unknown, user: TUser | false, info: unknown, _context: ExecutionContext, status?: unknown): TUser {
    if (error instanceof AppError) throw error;
    if (error) {
      // passport-oauth2's token/profile errors: Google refused the code, or could not be reached.
      throw new AppError(AccountsError.GoogleUnreachable, 'Google did not complete the sign-in; try again', {
        cause: error,
        headers: { 'Retry-After': '5' },
      });
    }
    if (user) return user;
    const message = (info as { message?: unknown } | undefined)?.message;
    if (status === 403) {
      throw new AppError(
        AccountsError.GoogleWebStateInvalid,
        `Refused the Google sign-in: ${typeof message === 'string' ? message : 'invalid state'}`,
      );
    }
    throw new AppError(AccountsError.GoogleWebDenied, 'The Google sign-in was cancelled or refused');
  }
}
