import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataDirOf } from './app.config.js';
import { defineNamespace, list } from './define-namespace.js';

/** Accounts: JWT_SECRET and lifetimes, REFRESH_REUSE_GRACE_SECONDS, LOGIN_LOCKOUT_*, GOOGLE_CLIENT_IDS, GOOGLE_WEB_*, GOOGLE_*_URL. */
export interface AuthConfig {
  readonly jwtSecret: string;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  /** A refresh token presented again within this window after its rotation gets a fresh pair instead of revoking its family. */
  readonly refreshReuseGraceSeconds: number;
  /** Consecutive failed sign-ins that lock an account. */
  readonly lockoutThreshold: number;
  readonly lockoutSeconds: number;
  /** OAuth client ids (iOS, Android, web) accepted as the audience of Google ID tokens; empty disables Google sign-in. */
  readonly googleClientIds: string[];
  /** The console's browser sign-in (GOOGLE_WEB_CLIENT_ID and _SECRET); null disables it (its routes answer 404). */
  readonly googleWeb: { readonly clientId: string; readonly clientSecret: string } | null;
  /** Google's OAuth endpoints and signing certificates; Google's own unless GOOGLE_*_URL say otherwise. */
  readonly googleEndpoints: GoogleEndpoints;
}

export interface GoogleEndpoints {
  readonly authorizationUrl: string;
  readonly tokenUrl: string;
  readonly userinfoUrl: string;
  /** The PEM certificates ID tokens are signed with. */
  readonly certificatesUrl: string;
}

export const GOOGLE_ENDPOINTS: GoogleEndpoints = {
  authorizationUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
  tokenUrl: 'https://oauth2.googleapis.com/token',
  userinfoUrl: 'https://openidconnect.googleapis.com/v1/userinfo',
  certificatesUrl: 'https://www.googleapis.com/oauth2/v1/certs',
};

/** In development a missing JWT_SECRET is generated once and kept in DATA_DIR, so sign-ins survive restarts. */
function developmentSecret(dataDir: string): string {
  const file = join(dataDir, 'dev-jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return secret;
}

export const authConfig = defineNamespace('auth', (env, cwd): AuthConfig => ({
  // Production never gets here without a strong JWT_SECRET: validateEnvironment refuses it.
  jwtSecret: env.JWT_SECRET ?? developmentSecret(dataDirOf(env, cwd)),
  accessTokenTtlSeconds: env.JWT_ACCESS_TTL_SECONDS ?? 900,
  refreshTokenTtlSeconds: env.JWT_REFRESH_TTL_SECONDS ?? 30 * 86_400,
  refreshReuseGraceSeconds: env.REFRESH_REUSE_GRACE_SECONDS ?? 30,
  lockoutThreshold: env.LOGIN_LOCKOUT_THRESHOLD ?? 5,
  lockoutSeconds: env.LOGIN_LOCKOUT_SECONDS ?? 900,
  googleClientIds: list(env.GOOGLE_CLIENT_IDS),
  googleWeb:
    env.GOOGLE_WEB_CLIENT_ID && env.GOOGLE_WEB_CLIENT_SECRET
      ? { clientId: env.GOOGLE_WEB_CLIENT_ID, clientSecret: env.GOOGLE_WEB_CLIENT_SECRET }
      : null,
  googleEndpoints: {
    authorizationUrl: env.GOOGLE_AUTHORIZATION_URL ?? GOOGLE_ENDPOINTS.authorizationUrl,
    tokenUrl: env.GOOGLE_TOKEN_URL ?? GOOGLE_ENDPOINTS.tokenUrl,
    userinfoUrl: env.GOOGLE_USERINFO_URL ?? GOOGLE_ENDPOINTS.userinfoUrl,
    certificatesUrl: env.GOOGLE_CERTIFICATES_URL ?? GOOGLE_ENDPOINTS.certificatesUrl,
  },
}));
