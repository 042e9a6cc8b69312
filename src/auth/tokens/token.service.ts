import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { JwtService, type JwtModuleOptions, type JwtVerifyOptions } from '@nestjs/jwt';
import { Clock } from '../../common/clock/clock.js';
import { isPlainObject } from '../../common/dto/fields.js';
import { authConfig, type AuthConfig } from '../../config/namespaces/auth.config.js';
import { AuthError, AuthErrorReason } from '../auth.errors.js';
import { jwtKey } from './jwt-key.js';

export type TokenType = 'access' | 'refresh';

export interface AccessClaims {
  typ: 'access';
  sub: string;
  sid: string;
  jti: string;
}

export interface RefreshClaims {
  typ: 'refresh';
  sub: string;
  sid: string;
  jti: string;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  refreshJti: string;
}

export const TOKEN_ISSUER = 'devpocket-server';

/**
 * What jsonwebtoken checks, for both verifiers: the JwtService (raw tokens: refresh, WebSockets)
 * and the Passport strategy (HTTP). HS256 only (`alg: none`, HS512, RS256… are refused), the
 * signature, our issuer. `exp` is checked right after, in `TokenService.claims`, against the
 * injected Clock, the server's one source of "now" (tests move it by hand): jsonwebtoken would
 * compare it with the system time, and passport-jwt's options are fixed when the strategy is built.
 */
export const JWT_VERIFY_OPTIONS = { algorithms: ['HS256'], issuer: TOKEN_ISSUER, ignoreExpiration: true } satisfies JwtVerifyOptions;

/** JwtModule's options: the one secret, HS256 for signing, the checks above for verifying. */
export function jwtModuleOptions(config: AuthConfig): JwtModuleOptions {
  return {
    secret: jwtKey(config.jwtSecret),
    signOptions: { algorithm: 'HS256' },
    verifyOptions: { ...JWT_VERIFY_OPTIONS },
  };
}

const invalidToken = (): AuthError => new AuthError(AuthErrorReason.InvalidToken, 'The token is invalid');

/**
 * Signs and verifies DevPocket's JWTs (HS256, through @nestjs/jwt). Access and refresh tokens
 * carry `typ`, so neither is ever accepted as the other.
 */
@Injectable()
export class TokenService {
  constructor(
    @Inject(authConfig.KEY) private readonly config: ConfigType<typeof authConfig>,
    private readonly clock: Clock,
    private readonly jwt: JwtService,
  ) {}

  private sign(claims: { typ: TokenType; sub: string; sid: string; jti: string }, ttlSeconds: number): Promise<string> {
    const iat = Math.floor(this.clock.nowMs() / 1000);
    return this.jwt.signAsync({ ...claims, iss: TOKEN_ISSUER, iat, exp: iat + ttlSeconds });
  }

  async issuePair(userId: string, sessionId: string): Promise<TokenPair> {
    const refreshJti = randomUUID();
    const [accessToken, refreshToken] = await Promise.all([
      this.sign({ typ: 'access', sub: userId, sid: sessionId, jti: randomUUID() }, this.config.accessTokenTtlSeconds),
      this.sign({ typ: 'refresh', sub: userId, sid: sessionId, jti: refreshJti }, this.config.refreshTokenTtlSeconds),
    ]);
    return { accessToken, refreshToken, expiresIn: this.config.accessTokenTtlSeconds, refreshJti };
  }

  verifyAccess(token: string): Promise<AccessClaims> {
    return this.verify(token, 'access') as Promise<AccessClaims>;
  }

  verifyRefresh(token: string): Promise<RefreshClaims> {
    return this.verify(token, 'refresh') as Promise<RefreshClaims>;
  }

  /** The claims of a payload whose signature and issuer are already verified (the Passport strategy's case). */
  accessClaims(payload: unknown): AccessClaims {
    return this.claims(payload, 'access') as AccessClaims;
  }

  private async verify(token: string, expected: TokenType): Promise<AccessClaims | RefreshClaims> {
    let payload: unknown;
    try {
      payload = await this.jwt.verifyAsync<object>(token);
    } catch {
      throw invalidToken();
    }
    return this.claims(payload, expected);
  }

  /**
   * Everything after the signature, in the order the checks have always run: expiry against the
   * Clock (no tolerance), then `typ`, then the claims every token must carry.
   */
  private claims(payload: unknown, expected: TokenType): AccessClaims | RefreshClaims {
    if (!isPlainObject(payload)) throw invalidToken();
    const { exp, typ, sub, sid, jti } = payload;
    if (exp !== undefined && typeof exp !== 'number') throw invalidToken();
    if (typeof exp === 'number' && exp <= Math.floor(this.clock.nowMs() / 1000)) {
      throw new AuthError(AuthErrorReason.TokenExpired, 'The token has expired');
    }
    if (typ !== expected) {
      throw new AuthError(AuthErrorReason.WrongTokenType, `This is not ${expected === 'access' ? 'an access' : 'a refresh'} token`);
    }
    if (typeof exp !== 'number' || typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string') {
      throw new AuthError(AuthErrorReason.InvalidToken, 'The token is missing required claims');
    }
    return { typ: expected, sub, sid, jti };
  }

  /** A stable, keyed digest for storing token ids and codes: a database leak reveals nothing usable. */
  digest(value: string): string {
    return createHmac('sha256', this.config.jwtSecret).update(value).digest('hex');
  }

  static sha256(value: string): string {
    return createHash('sha256').update(value).digest('hex');
  }

  /** A URL-safe random secret (256 bits) for single-use links. */
  static randomSecret(): string {
    return randomBytes(32).toString('base64url');
  }
}
