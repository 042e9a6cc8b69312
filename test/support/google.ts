import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import type { Certificates } from 'google-auth-library';
import { GoogleCertificateSource } from '../../src/auth/google/google-id-token.verifier.js';

/**
 * Google Sign-In without Google: a locally generated RSA key pair stands in for Google's signing
 * key. LocalGoogleCertificates serves its public key where production fetches Google's
 * certificates, and signGoogleIdToken() makes ID tokens the real verifier accepts.
 *
 *   createTestApp({
 *     env: { GOOGLE_CLIENT_IDS: TEST_GOOGLE_CLIENT_IDS.join(',') },
 *     override: (b) => b.overrideProvider(GoogleCertificateSource).useValue(new LocalGoogleCertificates()),
 *   });
 */

/** OAuth client ids the tests configure as GOOGLE_CLIENT_IDS: iOS, Android, web. */
export const TEST_GOOGLE_CLIENT_IDS = [
  'test-ios-client.apps.googleusercontent.com',
  'test-android-client.apps.googleusercontent.com',
  'test-web-client.apps.googleusercontent.com',
] as const;

/** The audience signGoogleIdToken() uses unless told otherwise. */
export const TEST_GOOGLE_DEFAULT_AUDIENCE = 'test-web-client.apps.googleusercontent.com';

/** Key id (`kid`) of the trusted test key. */
export const TEST_GOOGLE_KEY_ID = 'devpocket-test-google-key';

interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const trustedKey: KeyPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
/** Same kind of key, never served: tokens it signs must fail the signature check. */
const untrustedKey: KeyPair = generateKeyPairSync('rsa', { modulusLength: 2048 });

export interface GoogleIdTokenClaims {
  sub: string;
  email: string;
  email_verified: boolean;
  name: string;
  picture: string;
  aud: string;
  iss: string;
  /** Seconds since the epoch. */
  exp: number;
  /** Seconds since the epoch. */
  iat: number;
}

export interface SignGoogleIdTokenOptions {
  /** 'trusted' (default) is served by LocalGoogleCertificates; 'untrusted' is not. */
  key?: 'trusted' | 'untrusted';
  /** 'none' produces an unsigned token (`header.payload.`). */
  alg?: 'RS256' | 'none';
  /** Defaults to TEST_GOOGLE_KEY_ID, whichever key signs. */
  kid?: string;
}

/**
 * A Google-shaped ID token. Defaults: iss https://accounts.google.com, aud the test web client,
 * iat now, exp now + 1 h, email_verified true, plus a fixed sub, email, name and picture.
 * Pass a claim as `undefined` to leave it out (e.g. `{ sub: undefined }`).
 */
export function signGoogleIdToken(claims: Partial<GoogleIdTokenClaims> = {}, options: SignGoogleIdTokenOptions = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: 'https://accounts.google.com',
    aud: TEST_GOOGLE_DEFAULT_AUDIENCE,
    sub: '110248495921238986420',
    email: 'ada.lovelace@example.com',
    email_verified: true,
    name: 'Ada Lovelace',
    picture: 'https://lh3.googleusercontent.com/a/test-picture',
    iat: now,
    exp: now + 3600,
    ...claims,
  };
  const alg = options.alg ?? 'RS256';
  const header = { alg, kid: options.kid ?? TEST_GOOGLE_KEY_ID, typ: 'JWT' };
  const signingInput = `${encode(header)}.${encode(payload)}`;
  if (alg === 'none') return `${signingInput}.`;
  const key = options.key === 'untrusted' ? untrustedKey : trustedKey;
  return `${signingInput}.${sign('sha256', Buffer.from(signingInput), key.privateKey).toString('base64url')}`;
}

function encode(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/**
 * Serves the trusted test key as `{ [TEST_GOOGLE_KEY_ID]: <SPKI PEM> }`, the PEM map that
 * google-auth-library verifies with on Node.js. `fetches` counts calls; set `unavailable` to make
 * them fail as if Google could not be reached.
 */
export class LocalGoogleCertificates extends GoogleCertificateSource {
  fetches = 0;
  unavailable = false;

  async certificates(): Promise<Certificates> {
    this.fetches += 1;
    if (this.unavailable) throw new Error('Failed to retrieve verification certificates: LocalGoogleCertificates is set unavailable');
    return { [TEST_GOOGLE_KEY_ID]: trustedKey.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
  }
}
