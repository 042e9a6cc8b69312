import { createHmac } from 'node:crypto';
import { Test } from '@nestjs/testing';
import { OAuth2Client, type Certificates } from 'google-auth-library';
import {
  LocalGoogleCertificates,
  signGoogleIdToken,
  TEST_GOOGLE_CLIENT_IDS,
  TEST_GOOGLE_DEFAULT_AUDIENCE,
  TEST_GOOGLE_KEY_ID,
} from '../../../test/support/google.js';
import { AppError } from '../../common/errors/app-error.js';
import { AccountsError } from '../auth.errors.js';
import { configModule, loadConfiguration } from '../../config/configuration.js';
import {
  GoogleAuthLibraryVerifier,
  GoogleCertificateSource,
  GoogleFederatedCertificates,
  GoogleIdTokenVerifier,
} from './google-id-token.verifier.js';
import { GoogleModule } from './google.module.js';

type FederatedSignonCerts = Awaited<ReturnType<OAuth2Client['getFederatedSignonCertsAsync']>>;

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** The real module graph, configured from the environment the way the server is, with local certificates. */
async function createVerifier(
  options: { clientIds?: readonly string[]; certificates?: GoogleCertificateSource } = {},
): Promise<{ verifier: GoogleIdTokenVerifier; certificates: GoogleCertificateSource }> {
  const configuration = loadConfiguration({
    NODE_ENV: 'test',
    JWT_SECRET: 'google-verifier-spec-secret-7c1e9a4b2d6f8e0a3c5b7d9f',
    GOOGLE_CLIENT_IDS: (options.clientIds ?? TEST_GOOGLE_CLIENT_IDS).join(', '),
  });
  const certificates = options.certificates ?? new LocalGoogleCertificates();
  const moduleRef = await Test.createTestingModule({ imports: [configModule(configuration), GoogleModule] })
    .overrideProvider(GoogleCertificateSource)
    .useValue(certificates)
    .compile();
  return { verifier: moduleRef.get(GoogleIdTokenVerifier), certificates };
}

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const error: unknown = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof AppError)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

/** The error must never carry the token or any of its segments (they identify the user's session). */
function expectNoTokenIn(error: AppError, token: string): void {
  const exposed = `${error.detail}\n${error.message}\n${JSON.stringify(error.options)}\n${String(error.cause)}`;
  if (token.length > 0) expect(exposed).not.toContain(token);
  for (const segment of token.split('.')) if (segment.length > 8) expect(exposed).not.toContain(segment);
}

describe('GoogleAuthLibraryVerifier', () => {
  it('is what GoogleModule binds, with Google federated certificates by default', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [configModule(loadConfiguration({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(40) })), GoogleModule],
    }).compile();
    expect(moduleRef.get(GoogleIdTokenVerifier)).toBeInstanceOf(GoogleAuthLibraryVerifier);
    expect(moduleRef.get(GoogleCertificateSource)).toBeInstanceOf(GoogleFederatedCertificates);
  });

  describe.each(TEST_GOOGLE_CLIENT_IDS)('a valid token for the configured client %s', (audience) => {
    it('verifies and maps the identity', async () => {
      const { verifier } = await createVerifier();
      const token = signGoogleIdToken({
        aud: audience,
        sub: '104857600000000000001',
        email: '  Ada.Lovelace@Example.COM ',
        email_verified: true,
        name: 'Ada Lovelace',
        picture: 'https://lh3.googleusercontent.com/a/ada',
      });
      await expect(verifier.verify(token)).resolves.toEqual({
        subject: '104857600000000000001',
        email: 'ada.lovelace@example.com',
        emailVerified: true,
        name: 'Ada Lovelace',
        picture: 'https://lh3.googleusercontent.com/a/ada',
      });
    });
  });

  it('accepts both issuer spellings Google uses', async () => {
    const { verifier } = await createVerifier();
    for (const iss of ['accounts.google.com', 'https://accounts.google.com']) {
      await expect(verifier.verify(signGoogleIdToken({ iss }))).resolves.toMatchObject({ subject: '110248495921238986420' });
    }
  });

  it('maps absent optional claims to null and an unverified email to false', async () => {
    const { verifier } = await createVerifier();
    const token = signGoogleIdToken({ email: undefined, email_verified: false, name: undefined, picture: undefined });
    await expect(verifier.verify(token)).resolves.toEqual({
      subject: '110248495921238986420',
      email: null,
      emailVerified: false,
      name: null,
      picture: null,
    });
  });

  it('tolerates clock skew within five minutes', async () => {
    const { verifier } = await createVerifier();
    const now = nowSeconds();
    await expect(verifier.verify(signGoogleIdToken({ iat: now - 3660, exp: now - 60 }))).resolves.toBeDefined();
    await expect(verifier.verify(signGoogleIdToken({ iat: now + 60, exp: now + 3660 }))).resolves.toBeDefined();
  });

  const valid = (): string => signGoogleIdToken();
  const tampered = (): string => {
    const [header, , signature] = valid().split('.');
    const forged = Buffer.from(
      JSON.stringify({
        iss: 'https://accounts.google.com',
        aud: TEST_GOOGLE_DEFAULT_AUDIENCE,
        sub: '110248495921238986420',
        email: 'mallory@example.com',
        email_verified: true,
        iat: nowSeconds(),
        exp: nowSeconds() + 3600,
      }),
    ).toString('base64url');
    return `${header}.${forged}.${signature}`;
  };
  const hmacWithPublicKey = async (): Promise<string> => {
    // Algorithm confusion: HS256 keyed with the (public) certificate.
    const pem = (await new LocalGoogleCertificates().certificates())[TEST_GOOGLE_KEY_ID] as string;
    const [, payload] = valid().split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', kid: TEST_GOOGLE_KEY_ID, typ: 'JWT' })).toString('base64url');
    return `${header}.${payload}.${createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url')}`;
  };

  const rejected: [name: string, token: () => string | Promise<string>, reason: string][] = [
    ['another audience', () => signGoogleIdToken({ aud: 'someone-else.apps.googleusercontent.com' }), 'audience not accepted'],
    ['another issuer', () => signGoogleIdToken({ iss: 'https://accounts.example.com' }), 'not issued by Google'],
    ['an expired token', () => signGoogleIdToken({ iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 }), 'expired'],
    [
      'a token issued in the future beyond the skew',
      () => signGoogleIdToken({ iat: nowSeconds() + 600, exp: nowSeconds() + 4200 }),
      'issued in the future',
    ],
    ['a lifetime beyond one day', () => signGoogleIdToken({ exp: nowSeconds() + 2 * 86_400 }), 'expiry too far in the future'],
    ['no expiry', () => signGoogleIdToken({ exp: undefined }), 'no expiry time'],
    ['no issue time', () => signGoogleIdToken({ iat: undefined }), 'no issue time'],
    ['a signature by an untrusted key', () => signGoogleIdToken({}, { key: 'untrusted' }), 'signature does not match'],
    ['a tampered payload', tampered, 'signature does not match'],
    ['alg: none', () => signGoogleIdToken({}, { alg: 'none' }), 'unsupported signing algorithm'],
    ['HS256 keyed with the public certificate', hmacWithPublicKey, 'unsupported signing algorithm'],
    ['an unknown key id', () => signGoogleIdToken({}, { kid: 'rotated-away-key' }), 'signed by an unknown key'],
    ['no subject', () => signGoogleIdToken({ sub: undefined }), 'no subject (sub)'],
    ['an empty subject', () => signGoogleIdToken({ sub: '' }), 'no subject (sub)'],
    ['a garbage string', () => 'this-is-not-a-jwt', 'malformed token'],
    ['three garbage segments', () => 'abc.def.ghi', 'malformed token'],
    ['an empty string', () => '', 'empty token'],
    ['a stripped signature', () => valid().split('.').slice(0, 2).join('.') + '.', 'missing or malformed signature'],
    ['an oversized token', () => `${valid()}${'A'.repeat(10_000)}`, 'too long'],
  ];

  it.each(rejected)('rejects %s with 401 and a readable reason', async (_name, makeToken, reason) => {
    const { verifier } = await createVerifier();
    const token = await makeToken();
    const error = await rejection(verifier.verify(token));
    expect(error.code).toBe(AccountsError.GoogleTokenInvalid.code);
    expect(error.status).toBe(401);
    expect(error.detail).toMatch(/^Invalid Google ID token: /);
    expect(error.detail).toContain(reason);
    expectNoTokenIn(error, token);
  });

  it('does not fetch certificates for tokens that are not even well-formed', async () => {
    const { verifier, certificates } = await createVerifier();
    await rejection(verifier.verify('garbage'));
    await rejection(verifier.verify(signGoogleIdToken({}, { alg: 'none' })));
    expect((certificates as LocalGoogleCertificates).fetches).toBe(0);
  });

  it('answers 503 without touching certificates when no client id is configured', async () => {
    const { verifier, certificates } = await createVerifier({ clientIds: [] });
    const token = signGoogleIdToken();
    const error = await rejection(verifier.verify(token));
    expect(error.code).toBe(AccountsError.GoogleNotConfigured.code);
    expect(error.status).toBe(503);
    expect(error.detail).toBe('Google sign-in is not configured on this server');
    expect((certificates as LocalGoogleCertificates).fetches).toBe(0);
  });

  it('answers 503 when the certificates cannot be fetched', async () => {
    const certificates = new LocalGoogleCertificates();
    certificates.unavailable = true;
    const { verifier } = await createVerifier({ certificates });
    const token = signGoogleIdToken();
    const error = await rejection(verifier.verify(token));
    expect(error.code).toBe(AccountsError.GoogleUnreachable.code);
    expect(error.status).toBe(503);
    expect(error.detail).toBe('Could not reach Google to verify the sign-in; try again');
    expect(error.options.headers).toEqual({ 'Retry-After': '5' });
    expect(error.cause).toBeInstanceOf(Error);
    expectNoTokenIn(error, token);

    certificates.unavailable = false;
    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: '110248495921238986420' });
  });

  it('answers 503 when the certificate list is empty', async () => {
    class NoCertificates extends GoogleCertificateSource {
      async certificates(): Promise<Certificates> {
        return {};
      }
    }
    const { verifier } = await createVerifier({ certificates: new NoCertificates() });
    const error = await rejection(verifier.verify(signGoogleIdToken()));
    expect(error.code).toBe(AccountsError.GoogleUnreachable.code);
  });
});

describe('GoogleFederatedCertificates', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('shares one fetch between concurrent callers and fetches again after a failure', async () => {
    // Stands in for the HTTP request to Google: no test reaches the network.
    let release: (certs: Certificates) => void = () => undefined;
    const fetch = vi
      .spyOn(OAuth2Client.prototype, 'getFederatedSignonCertsAsync')
      .mockImplementationOnce(() => Promise.reject(new Error('Failed to retrieve verification certificates: offline')))
      .mockImplementationOnce(
        () =>
          new Promise((resolve) => {
            release = (certs) => resolve({ certs } as FederatedSignonCerts);
          }),
      );
    const source = new GoogleFederatedCertificates();

    await expect(source.certificates()).rejects.toThrow('offline');
    const first = source.certificates();
    const second = source.certificates();
    release({ kid: 'pem' });
    await expect(Promise.all([first, second])).resolves.toEqual([{ kid: 'pem' }, { kid: 'pem' }]);
    expect(fetch).toHaveBeenCalledTimes(2);
  });
});
