import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { Clock } from '../common/clock/clock.js';
import { authConfig } from '../config/namespaces/auth.config.js';

/**
 * What a preview token says: who (`sub`, and the sign-in session `sid` it ends with), which
 * preview (`env`, `port`), until when (`exp`, ms). A `grant` rides in `external_url` and is
 * exchanged for a `cookie` on first use.
 */
export interface PreviewClaims {
  kind: 'grant' | 'cookie';
  sub: string;
  sid: string;
  env: string;
  port: number;
  exp: number;
}

/**
 * Signs and checks preview tokens: `<base64url JSON>.<base64url HMAC-SHA256>`, under a key derived
 * from JWT_SECRET for this purpose only (HKDF), so that neither kind can pass for an access token
 * nor the other way round.
 */
@Injectable()
export class PreviewTokens {
  private readonly key: Buffer;

  constructor(
    @Inject(authConfig.KEY) auth: ConfigType<typeof authConfig>,
    private readonly clock: Clock,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', auth.jwtSecret, 'devpocket-previews', 'preview tokens v1', 32));
  }

  sign(claims: Omit<PreviewClaims, 'exp'>, ttlMs: number): string {
    const body = Buffer.from(JSON.stringify({ ...claims, exp: this.clock.nowMs() + ttlMs })).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** The claims of a token of this kind, well signed and not expired; null otherwise. */
  verify(token: string, kind: PreviewClaims['kind']): PreviewClaims | null {
    const [body, mac, extra] = token.split('.');
    if (!body || !mac || extra !== undefined) return null;
    const expected = Buffer.from(this.mac(body));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let claims: Partial<PreviewClaims>;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<PreviewClaims>;
    } catch {
      return null;
    }
    const valid =
      claims.kind === kind &&
      typeof claims.sub === 'string' &&
      typeof claims.sid === 'string' &&
      typeof claims.env === 'string' &&
      typeof claims.port === 'number' &&
      typeof claims.exp === 'number' &&
      claims.exp > this.clock.nowMs();
    return valid ? (claims as PreviewClaims) : null;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
