import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { Clock } from '../../common/clock/clock.js';
import { authConfig } from '../../config/namespaces/auth.config.js';
import { AuthError, AuthErrorReason } from '../auth.errors.js';

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

const ISSUER = 'devpocket-server';

/**
 * Signs and verifies DevPocket's JWTs (HS256 only: `alg: none` and every other algorithm are
 * refused). Access and refresh tokens carry `typ`, so neither is ever accepted as the other.
 */
@Injectable()
export class TokenService {
  private readonly key: Uint8Array;

  constructor(
    @Inject(authConfig.KEY) private readonly config: ConfigType<typeof authConfig>,
    private readonly clock: Clock,
  ) {
    this.key = new TextEncoder().encode(config.jwtSecret);
  }

  private async sign(claims: { typ: TokenType; sub: string; sid: string; jti: string }, ttlSeconds: number): Promise<string> {
    const now = Math.floor(this.clock.nowMs() / 1000);
    return new SignJWT({ typ: claims.typ, sid: claims.sid })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(claims.sub)
      .setJti(claims.jti)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .sign(this.key);
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

  private async verify(token: string, expected: TokenType): Promise<AccessClaims | RefreshClaims> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        currentDate: this.clock.now(),
      });
      const { typ, sub, sid, jti } = payload as { typ?: unknown; sub?: unknown; sid?: unknown; jti?: unknown };
      if (typ !== expected) {
        throw new AuthError(AuthErrorReason.WrongTokenType, `This is not ${expected === 'access' ? 'an access' : 'a refresh'} token`);
      }
      if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string') {
        throw new AuthError(AuthErrorReason.InvalidToken, 'The token is missing required claims');
      }
      return { typ: expected, sub, sid, jti };
    } catch (error) {
      if (error instanceof AuthError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new AuthError(AuthErrorReason.TokenExpired, 'The token has expired');
      throw new AuthError(AuthErrorReason.InvalidToken, 'The token is invalid');
    }
  }

  /** A stable, keyed digest for storing token ids and codes: a database leak reveals nothing usable. */
  digest(value: string): string {
    return createHmac('sha256', this.key).update(value).digest('hex');
  }

  static sha256(value: string): string {
    return createHash('sha256').update(value).digest('hex');
  }

  /** A URL-safe random secret (256 bits) for single-use links. */
  static randomSecret(): string {
    return randomBytes(32).toString('base64url');
  }
}
