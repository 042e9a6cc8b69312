import type { Request } from 'express';

/**
 * `Authorization: Bearer <access token>` → the token, or null (no header, another scheme, an empty
 * value, or more than one value). The scheme is case-insensitive. The Passport strategy reads the
 * token with this (passport-jwt's `ExtractJwt.fromAuthHeaderAsBearerToken()` would also take the
 * first word of `Bearer a b`), and the guard tells "no token" from "a bad token" with it.
 */
export function bearerToken(req: Request): string | null {
  const header = req.header('authorization');
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}
