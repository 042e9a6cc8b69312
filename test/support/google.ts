import { createHash, generateKeyPairSync, KeyObject, randomBytes, sign } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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
  const payload = googleIdTokenClaims(claims);
  const alg = options.alg ?? 'RS256';
  const header = { alg, kid: options.kid ?? TEST_GOOGLE_KEY_ID, typ: 'JWT' };
  const signingInput = `${encode(header)}.${encode(payload)}`;
  if (alg === 'none') return `${signingInput}.`;
  const key = options.key === 'untrusted' ? untrustedKey : trustedKey;
  return `${signingInput}.${sign('sha256', Buffer.from(signingInput), key.privateKey).toString('base64url')}`;
}

/** The claims signGoogleIdToken() signs: its defaults, overridden by `claims`. */
export function googleIdTokenClaims(claims: Partial<GoogleIdTokenClaims> = {}): Partial<GoogleIdTokenClaims> {
  const now = Math.floor(Date.now() / 1000);
  return {
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

/**
 * Google's OAuth 2.0 endpoints for the console's browser sign-in, on a local port: an authorization
 * endpoint that approves at once (as `identity`) and redirects back with a code, a token endpoint
 * that checks the client secret, the redirect URI and the PKCE verifier and answers with an ID token
 * signed by the trusted test key, a userinfo endpoint, and the certificates. `env` points a server
 * at it (GOOGLE_WEB_CLIENT_ID/_SECRET and the GOOGLE_*_URL). `tokenRequests` counts code exchanges.
 *
 *   const google = await LocalGoogleOAuthServer.start();
 *   google.identity = { sub: 'g-1', email: 'someone@example.com' };
 *   new ServerProcess({ ...serverEnv, ...google.env });
 */
export class LocalGoogleOAuthServer {
  static readonly CLIENT_ID = TEST_GOOGLE_DEFAULT_AUDIENCE;
  static readonly CLIENT_SECRET = 'test-web-client-secret';

  /** Who "signs in at Google" on the next authorization. */
  identity: Partial<GoogleIdTokenClaims> = {};
  /** The person cancels at Google: the authorization redirects back with `error=access_denied`, as Google's does. */
  denies = false;
  tokenRequests = 0;
  /** Every authorization code handed out, to look for in logs. */
  readonly issuedCodes: string[] = [];
  private readonly codes = new Map<string, { redirectUri: string; challenge: string; claims: Partial<GoogleIdTokenClaims> }>();
  private readonly accessTokens = new Map<string, Partial<GoogleIdTokenClaims>>();

  private constructor(
    private readonly server: Server,
    readonly baseUrl: string,
  ) {}

  static async start(): Promise<LocalGoogleOAuthServer> {
    let instance: LocalGoogleOAuthServer | null = null;
    const server = createServer((req, res) => {
      instance?.handle(req, res).catch((error: unknown) => reply(res, 500, { error: String(error) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as AddressInfo;
    instance = new LocalGoogleOAuthServer(server, `http://127.0.0.1:${address.port}`);
    return instance;
  }

  get env(): Record<string, string> {
    return {
      GOOGLE_WEB_CLIENT_ID: LocalGoogleOAuthServer.CLIENT_ID,
      GOOGLE_WEB_CLIENT_SECRET: LocalGoogleOAuthServer.CLIENT_SECRET,
      GOOGLE_AUTHORIZATION_URL: `${this.baseUrl}/o/oauth2/v2/auth`,
      GOOGLE_TOKEN_URL: `${this.baseUrl}/token`,
      GOOGLE_USERINFO_URL: `${this.baseUrl}/v1/userinfo`,
      GOOGLE_CERTIFICATES_URL: `${this.baseUrl}/oauth2/v1/certs`,
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    if (req.method === 'GET' && url.pathname === '/o/oauth2/v2/auth') return this.authorize(url, res);
    if (req.method === 'POST' && url.pathname === '/token') return this.token(new URLSearchParams(await readBody(req)), res);
    if (req.method === 'GET' && url.pathname === '/v1/userinfo') return this.userinfo(req, res);
    if (req.method === 'GET' && url.pathname === '/oauth2/v1/certs')
      return reply(res, 200, await new LocalGoogleCertificates().certificates());
    reply(res, 404, { error: 'not_found' });
  }

  private authorize(url: URL, res: ServerResponse): void {
    const query = url.searchParams;
    const redirectUri = query.get('redirect_uri');
    const problem =
      query.get('client_id') !== LocalGoogleOAuthServer.CLIENT_ID
        ? 'unknown client_id'
        : query.get('response_type') !== 'code'
          ? 'response_type must be code'
          : !redirectUri
            ? 'no redirect_uri'
            : !query.get('state')
              ? 'no state'
              : query.get('code_challenge_method') !== 'S256' || !query.get('code_challenge')
                ? 'no S256 code_challenge'
                : !(query.get('scope') ?? '').split(' ').includes('openid')
                  ? 'no openid scope'
                  : null;
    if (problem || !redirectUri) return reply(res, 400, { error: 'invalid_request', error_description: problem });
    if (this.denies) {
      const refused = new URL(redirectUri);
      refused.searchParams.set('error', 'access_denied');
      refused.searchParams.set('state', query.get('state') ?? '');
      res.writeHead(302, { location: refused.href }).end();
      return;
    }
    const code = randomBytes(16).toString('hex');
    this.issuedCodes.push(code);
    this.codes.set(code, { redirectUri, challenge: query.get('code_challenge') ?? '', claims: { ...this.identity } });
    const back = new URL(redirectUri);
    back.searchParams.set('code', code);
    back.searchParams.set('state', query.get('state') ?? '');
    res.writeHead(302, { location: back.href }).end();
  }

  private token(form: URLSearchParams, res: ServerResponse): void {
    this.tokenRequests += 1;
    const code = form.get('code') ?? '';
    const grant = this.codes.get(code);
    this.codes.delete(code);
    const verifier = form.get('code_verifier') ?? '';
    if (
      !grant ||
      form.get('grant_type') !== 'authorization_code' ||
      form.get('client_id') !== LocalGoogleOAuthServer.CLIENT_ID ||
      form.get('client_secret') !== LocalGoogleOAuthServer.CLIENT_SECRET ||
      form.get('redirect_uri') !== grant.redirectUri ||
      createHash('sha256').update(verifier).digest('base64url') !== grant.challenge
    ) {
      return reply(res, 400, { error: 'invalid_grant' });
    }
    const accessToken = randomBytes(16).toString('hex');
    this.accessTokens.set(accessToken, grant.claims);
    reply(res, 200, {
      access_token: accessToken,
      expires_in: 3599,
      token_type: 'Bearer',
      scope: 'openid email profile',
      id_token: signGoogleIdToken({ aud: LocalGoogleOAuthServer.CLIENT_ID, ...grant.claims }),
    });
  }

  /** Only with the access token in an Authorization header: one in the URL would end up in access logs. */
  private userinfo(req: IncomingMessage, res: ServerResponse): void {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const claims = this.accessTokens.get(token);
    if (!claims) return reply(res, 401, { error: 'invalid_token' });
    const { sub, email, email_verified, name, picture } = googleIdTokenClaims(claims);
    reply(res, 200, { sub, email, email_verified, name, picture });
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
