import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { AppError } from '../common/errors/app-error.js';
import { ADMIN_ONLY, IS_PUBLIC } from './auth.decorators.js';
import { AccountsError, AuthError, AuthErrorReason } from './auth.errors.js';
import { AuthService } from './auth.service.js';

/** `Authorization: Bearer <access token>` → the token, or null. */
export function bearerToken(req: Request): string | null {
  const header = req.header('authorization');
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/**
 * The global guard: every HTTP route needs a valid access token unless marked `@Public()`;
 * `@AdminOnly()` routes also need the admin role. The token's session and user are checked on
 * every request, so sign-out, deactivation and deletion take effect at once.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, targets)) return true;
    const req = context.switchToHttp().getRequest<Request>();
    const token = bearerToken(req);
    if (!token)
      throw new AuthError(AuthErrorReason.MissingToken, 'Authentication required: send an access token as `Authorization: Bearer <token>`');
    req.principal = await this.auth.authenticate(token);
    if (this.reflector.getAllAndOverride<boolean | undefined>(ADMIN_ONLY, targets) && req.principal.user.role !== 'admin') {
      throw new AppError(AccountsError.AdminRequired, 'This action requires the admin role');
    }
    return true;
  }
}
