import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard, type AuthGuardAuthenticateOptions } from '@nestjs/passport';
import type { Request } from 'express';
import passport from 'passport';
import { AppError } from '../../common/errors/app-error.js';
import type { Principal } from '../../common/http/principal.js';
import { ADMIN_ONLY, IS_PUBLIC } from '../../common/http/route-access.js';
import { AccountsError, AuthError, AuthErrorReason } from '../auth.errors.js';
import { bearerToken } from './bearer-token.js';
import { JWT_STRATEGY, JwtStrategy } from './jwt.strategy.js';

/**
 * The global guard (APP_GUARD, after the rate-limit guard), on Passport's `AuthGuard('jwt')`:
 * every HTTP route needs a valid access token unless it is marked `@Public()`, and `@AdminOnly()`
 * routes also need the admin role. `JwtStrategy` checks the token and then the session and the
 * user on every request, so sign-out, deactivation and deletion take effect at once; what it
 * returns is `req.principal` (`@CurrentPrincipal()`).
 *
 * Every refusal is one of ours: Passport's own 401 ("Unauthorized") never reaches a client.
 */
@Injectable()
export class JwtAuthGuard extends AuthGuard(JWT_STRATEGY) {
  constructor(
    private readonly reflector: Reflector,
    private readonly strategy: JwtStrategy,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    // WebSockets never reach the guards: each gateway authenticates with AuthService.authenticate.
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, targets)) return true;
    await super.canActivate(context);
    const principal = context.switchToHttp().getRequest<Request>().principal;
    if (this.reflector.getAllAndOverride<boolean | undefined>(ADMIN_ONLY, targets) && principal?.user.role !== 'admin') {
      throw new AppError(AccountsError.AdminRequired, 'This action requires the admin role');
    }
    return true;
  }

  /** What the strategy returns is stored as `req.principal`; there are no server-side sessions. */
  override getAuthenticateOptions(): AuthGuardAuthenticateOptions {
    return { session: false, property: 'principal' };
  }

  /**
   * `err` is what `validate` threw (an AuthError with its reason, or e.g. a database outage, which
   * stays a 503). Without a principal and without an error, passport-jwt failed before `validate`:
   * there was no token, or jsonwebtoken refused it (signature, algorithm, issuer, not a JWT).
   */
  override handleRequest<TUser = Principal>(err: unknown, principal: unknown, _info: unknown, context: ExecutionContext): TUser {
    if (err instanceof Error) throw err;
    if (err) throw new Error('The JWT strategy failed', { cause: err });
    if (principal) return principal as TUser;
    if (bearerToken(context.switchToHttp().getRequest<Request>()) === null) {
      throw new AuthError(AuthErrorReason.MissingToken, 'Authentication required: send an access token as `Authorization: Bearer <token>`');
    }
    throw new AuthError(AuthErrorReason.InvalidToken, 'The token is invalid');
  }

  /**
   * Passport keeps strategies in one process-wide registry, by name, and `AuthGuard` looks the
   * strategy up there: the last application created in the process would otherwise verify every
   * application's tokens with its own secret and database (the end-to-end tests run several side
   * by side). `AuthGuard.canActivate` calls `getRequest` right before that look-up, with no
   * `await` in between, so registering this application's strategy here makes the look-up find it.
   */
  override getRequest(context: ExecutionContext): Request {
    passport.use(JWT_STRATEGY, this.strategy);
    return context.switchToHttp().getRequest<Request>();
  }
}
