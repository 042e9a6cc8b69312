import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
// A type-only import: the caller is a user of the Accounts capability, and nothing of users/ runs here.
import type { User } from '../../users/user.js';

/** Who is calling: what the authentication guard attaches to an authenticated request. */
export interface Principal {
  /** The user as loaded from the database on this request (role, plan and active flag are current). */
  user: User;
  sessionId: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/** The authenticated caller: `@CurrentPrincipal() principal: Principal`. */
export const CurrentPrincipal = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<Request>().principal;
  if (!principal) throw new Error('CurrentPrincipal used on a route without authentication');
  return principal;
});
