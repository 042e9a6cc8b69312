import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { type Certificates, OAuth2Client, type TokenPayload } from 'google-auth-library';
import { AppError } from '../../common/errors/app-error.js';
import { AccountsError } from '../auth.errors.js';
import { authConfig } from '../../config/namespaces/auth.config.js';

/** Who a verified Google ID token says the caller is. */
export interface GoogleIdentity {
  /** Google's stable account id (`sub`); the key to link accounts by, never the email. */
  subject: string;
  /** Lower-cased; null when the token carries no email (the `email` scope was not requested). */
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  picture: string | null;
}

/** Turns a Google ID token into a verified identity, or throws an AppError. */
export abstract class GoogleIdTokenVerifier {
  /**
   * `audiences`: the OAuth client ids the token may be issued for; the mobile clients'
   * (GOOGLE_CLIENT_IDS) unless the caller says otherwise (the console's browser flow: its web client).
   */
  abstract verify(idToken: string, audiences?: readonly string[]): Promise<GoogleIdentity>;
}

/**
 * Google's token-signing certificates keyed by key id (`kid`), in the shape
 * `OAuth2Client.verifySignedJwtWithCertsAsync` takes: on Node.js, PEM strings (X.509 certificates
 * or SPKI public keys). Production fetches Google's; tests serve a local key (test/support/google.ts).
 */
export abstract class GoogleCertificateSource {
  abstract certificates(): Promise<Certificates>;
}

/** Per-attempt timeout for fetching Google's certificates (the library retries a few times). */
const CERTIFICATE_FETCH_TIMEOUT_MS = 5_000;

/**
 * Google's published certificates (GOOGLE_CERTIFICATES_URL, by default https://www.googleapis.com/oauth2/v1/certs) through
 * google-auth-library, which caches them for as long as the response's Cache-Control allows.
 * Concurrent callers share one request while the cache is being refilled.
 */
@Injectable()
export class GoogleFederatedCertificates extends GoogleCertificateSource {
  private readonly client: OAuth2Client;
  private pending: Promise<Certificates> | null = null;

  constructor(@Optional() @Inject(authConfig.KEY) config?: ConfigType<typeof authConfig>) {
    super();
    const certificatesUrl = config?.googleEndpoints.certificatesUrl;
    this.client = new OAuth2Client({
      transporterOptions: { timeout: CERTIFICATE_FETCH_TIMEOUT_MS },
      ...(certificatesUrl ? { endpoints: { oauth2FederatedSignonPemCertsUrl: certificatesUrl } } : {}),
    });
  }

  certificates(): Promise<Certificates> {
    this.pending ??= this.client
      .getFederatedSignonCertsAsync()
      .then((response) => response.certs)
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }
}

/** Issuers Google uses in ID tokens (both forms occur). */
export const GOOGLE_ISSUERS: readonly string[] = ['accounts.google.com', 'https://accounts.google.com'];

/** Longest lifetime (exp - now) accepted; Google issues ID tokens for one hour. */
const MAX_TOKEN_LIFETIME_SECONDS = 86_400;

/** Google ID tokens are 1-2 KB; anything far larger is not one and is not worth parsing. */
const MAX_TOKEN_LENGTH = 8_192;

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Reasons for the library's rejections, matched on the start of its error messages, which also
 * embed the token itself and so are never passed on. The spec pins each one, so a library upgrade
 * that rewords a message fails a test instead of silently degrading to the generic reason.
 */
const LIBRARY_REASONS: readonly (readonly [prefix: string, reason: string])[] = [
  ['Wrong number of segments', 'malformed token'],
  ["Can't parse token", 'malformed token'],
  ['No pem found', 'signed by an unknown key'],
  ['Invalid token signature', 'signature does not match'],
  ['No issue time', 'no issue time'],
  ['No expiration time', 'no expiry time'],
  ['iat field using invalid format', 'malformed issue time'],
  ['exp field using invalid format', 'malformed expiry time'],
  ['Expiration time too far in future', 'expiry too far in the future'],
  ['Token used too early', 'issued in the future'],
  ['Token used too late', 'expired'],
  ['Invalid issuer', 'not issued by Google'],
  ['Wrong recipient', 'issued for another application (audience not accepted)'],
];

const invalid = (reason: string): AppError => new AppError(AccountsError.GoogleTokenInvalid, `Invalid Google ID token: ${reason}`);

function decodeJsonObject(segment: string): Record<string, unknown> | null {
  if (!BASE64URL.test(segment)) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Structural checks before any certificate is fetched: garbage never costs a request to Google,
 * and only RS256 (what Google signs with) gets as far as the library, so `alg: none` and
 * algorithm-confusion tokens are refused by name rather than by accident.
 */
function structuralProblem(idToken: string): string | null {
  if (idToken.length === 0) return 'empty token';
  if (idToken.length > MAX_TOKEN_LENGTH) return 'malformed token (too long)';
  const segments = idToken.split('.');
  if (segments.length !== 3) return 'malformed token (not a JWT)';
  const [headerSegment, payloadSegment, signatureSegment] = segments as [string, string, string];
  const header = decodeJsonObject(headerSegment);
  if (header === null) return 'malformed token (unreadable header)';
  if (header.alg !== 'RS256') return 'unsupported signing algorithm (only RS256 is accepted)';
  if (typeof header.kid !== 'string' || header.kid.length === 0) return 'no key id in the header';
  if (decodeJsonObject(payloadSegment) === null) return 'malformed token (unreadable payload)';
  if (!BASE64URL.test(signatureSegment)) return 'missing or malformed signature';
  return null;
}

function optionalString(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed.length > 0 ? trimmed : null;
}

function toIdentity(payload: TokenPayload): GoogleIdentity {
  const subject = optionalString(payload.sub);
  if (subject === null) throw invalid('no subject (sub)');
  // Older tokens carried email_verified as the string "true".
  const emailVerified: unknown = payload.email_verified;
  return {
    subject,
    email: optionalString(payload.email)?.toLowerCase() ?? null,
    emailVerified: emailVerified === true || emailVerified === 'true',
    name: optionalString(payload.name),
    picture: optionalString(payload.picture),
  };
}

/**
 * Verifies Google ID tokens with google-auth-library: RS256 signature against the certificate
 * source, issuer, iat/exp (the library allows 5 minutes of clock skew) and an audience among
 * the auth namespace's googleClientIds (GOOGLE_CLIENT_IDS: the iOS, Android and web OAuth client ids).
 */
@Injectable()
export class GoogleAuthLibraryVerifier extends GoogleIdTokenVerifier {
  private readonly logger = new Logger('GoogleSignIn');
  /** Only used for its offline verification; it never makes a request. */
  private readonly client = new OAuth2Client();

  constructor(
    @Inject(authConfig.KEY) private readonly config: ConfigType<typeof authConfig>,
    private readonly certificateSource: GoogleCertificateSource,
  ) {
    super();
  }

  async verify(idToken: string, audiences: readonly string[] = this.config.googleClientIds): Promise<GoogleIdentity> {
    if (audiences.length === 0) throw new AppError(AccountsError.GoogleNotConfigured, 'Google sign-in is not configured on this server');

    const problem = typeof idToken === 'string' ? structuralProblem(idToken) : 'not a string';
    if (problem !== null) throw invalid(problem);

    const certificates = await this.fetchCertificates();
    let payload: TokenPayload | undefined;
    try {
      const ticket = await this.client.verifySignedJwtWithCertsAsync(
        idToken,
        certificates,
        [...audiences],
        [...GOOGLE_ISSUERS],
        MAX_TOKEN_LIFETIME_SECONDS,
      );
      payload = ticket.getPayload();
    } catch (error) {
      throw invalid(this.reasonFor(error));
    }
    if (payload === undefined) throw invalid('malformed token (no payload)');
    return toIdentity(payload);
  }

  private async fetchCertificates(): Promise<Certificates> {
    let certificates: Certificates;
    try {
      certificates = await this.certificateSource.certificates();
    } catch (error) {
      throw this.unreachable(error);
    }
    if (Object.keys(certificates).length === 0) throw this.unreachable(new Error("Google's certificate list is empty"));
    return certificates;
  }

  /** A 503 whose cause (the fetch error, free of any token) reaches the log through the exception filter. */
  private unreachable(cause: unknown): AppError {
    return new AppError(AccountsError.GoogleUnreachable, 'Could not reach Google to verify the sign-in; try again', {
      cause,
      headers: { 'Retry-After': '5' },
    });
  }

  /** A readable reason; library messages embed the token, so only the mapped reason leaves here. */
  private reasonFor(error: unknown): string {
    const message = error instanceof Error ? error.message : '';
    const known = LIBRARY_REASONS.find(([prefix]) => message.startsWith(prefix));
    if (known) return known[1];
    // Not a rejection the library names (e.g. an unusable certificate): log its kind, never the message.
    this.logger.warn(`Unexpected failure verifying a Google ID token (${error instanceof Error ? error.name : typeof error})`);
    return 'verification failed';
  }
}
