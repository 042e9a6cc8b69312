import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import type { Principal } from '../../common/http/principal.js';
import { authConfig } from '../../config/namespaces/auth.config.js';
import { AuthService } from '../auth.service.js';
import { jwtKey } from '../tokens/jwt-key.js';
import { JWT_VERIFY_OPTIONS, TokenService } from '../tokens/token.service.js';
import { bearerToken } from './bearer-token.js';

/** The name under which the strategy is registered with Passport, and which the guard asks for. */
export const JWT_STRATEGY = 'jwt';

/**
 * Passport's JWT strategy for HTTP requests. passport-jwt reads the bearer token and lets
 * jsonwebtoken check the signature, the algorithm (HS256 only) and the issuer; `validate` then
 * makes the checks every access token gets, wherever it comes from (`AuthService.authenticate`
 * makes the same two calls for the WebSockets): expiry against the Clock, `typ: "access"`, the
 * required claims (`TokenService.accessClaims`), then the live session and the active user
 * (`AuthService.principalFor`). Its result becomes `req.principal`.
 *
 * A failure inside `validate` is an AuthError with its reason; a failure before it (no token, a
 * bad signature…) reaches `JwtAuthGuard.handleRequest`, which turns it into one.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, JWT_STRATEGY) {
  constructor(
    @Inject(authConfig.KEY) config: ConfigType<typeof authConfig>,
    private readonly tokens: TokenService,
    private readonly auth: AuthService,
  ) {
    // jsonwebtoken, which passport-jwt hands the key to, takes a KeyObject; passport-jwt's types predate it.
    const secretOrKey = jwtKey(config.jwtSecret) as unknown as Buffer;
    super({ jwtFromRequest: bearerToken, secretOrKey, ...JWT_VERIFY_OPTIONS });
  }

  async validate(payload: unknown): Promise<Principal> {
    return this.auth.principalFor(this.tokens.accessClaims(payload));
  }
}
