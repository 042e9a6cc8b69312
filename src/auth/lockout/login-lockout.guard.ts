import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { createValidationPipe } from '../../common/errors/validation.js';
import { LoginDto } from '../dto/auth.dto.js';
import { LoginLockout } from './login-lockout.js';

/**
 * On `POST /auth/login`, beside the global JwtAuthGuard: a locked account is refused (423 with
 * `Retry-After` and `locked_until`) before the sign-in service runs, so no argon2 work is spent on
 * it and nothing is counted.
 *
 * Guards run before pipes, so the guard reads the body through the global validation itself: a
 * malformed sign-in still answers 422 before 423, as it did when the lock was checked in the
 * service, and the account looked up here is exactly the one the service looks up (same trimming).
 */
@Injectable()
export class LoginLockoutGuard implements CanActivate {
  private readonly validation = createValidationPipe();

  constructor(private readonly lockout: LoginLockout) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const body = context.switchToHttp().getRequest<Request>().body as unknown;
    const login = (await this.validation.transform(body, { type: 'body', metatype: LoginDto })) as LoginDto;
    await this.lockout.refuseIfLocked(login.username_or_email);
    return true;
  }
}
