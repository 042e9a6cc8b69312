import { SetMetadata } from '@nestjs/common';

// Who may call a route. The global authentication guard (src/auth/jwt/jwt-auth.guard.ts) reads
// these marks: every HTTP route needs an access token unless it is marked @Public().

export const IS_PUBLIC = Symbol('is-public');
export const ADMIN_ONLY = Symbol('admin-only');

/** The route needs no access token (sign-in, health, …). Everything else does. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);

/** The route is for users with the `admin` role; others get 403. */
export const AdminOnly = (): MethodDecorator & ClassDecorator => SetMetadata(ADMIN_ONLY, true);
