import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Clock } from '../../src/common/clock/clock.js';
import { GoogleCertificateSource } from '../../src/auth/google/google-id-token.verifier.js';
import { FakeClock } from './fake-clock.js';
import { LocalGoogleCertificates, TEST_GOOGLE_CLIENT_IDS } from './google.js';
import { parseMail, ParsedMail } from './smtp-server.js';
import { createTestApp, TestApp, TestAppOptions } from './test-app.js';

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}

export interface AccountsApp extends TestApp {
  clock: FakeClock;
  google: LocalGoogleCertificates;
  /** A JSON request; `ip` sets X-Forwarded-For (the app trusts loopback proxies), `token` the bearer. */
  request(method: string, path: string, options?: { body?: unknown; token?: string; ip?: string; raw?: string }): Promise<Response>;
  json<T>(
    method: string,
    path: string,
    options?: { body?: unknown; token?: string; ip?: string },
  ): Promise<{ status: number; body: T; headers: Headers }>;
  /** Registers a fresh account (unique name, own client address) and returns its credentials and tokens. */
  register(overrides?: Partial<{ username: string; email: string; password: string; full_name: string }>): Promise<TestAccount>;
  /** Mails written to the development outbox for this address, oldest first. */
  outbox(address: string): ParsedMail[];
}

export interface TestAccount {
  username: string;
  email: string;
  password: string;
  tokens: Tokens;
}

export const randomIp = (): string => `10.${[0, 0, 0].map(() => Math.floor(Math.random() * 250) + 1).join('.')}`;

/**
 * The application with what account tests need: a hand-moved clock, Google certificates of a
 * local key, trusted loopback proxies (so each simulated client has its own address), mail in the
 * development outbox.
 */
export async function createAccountsApp(options: TestAppOptions = {}): Promise<AccountsApp> {
  const clock = new FakeClock();
  const google = new LocalGoogleCertificates();
  const t = await createTestApp({
    ...options,
    env: { TRUSTED_PROXIES: 'loopback', GOOGLE_CLIENT_IDS: TEST_GOOGLE_CLIENT_IDS.join(','), ...options.env },
    override: (builder) => {
      const b = builder.overrideProvider(Clock).useValue(clock).overrideProvider(GoogleCertificateSource).useValue(google);
      return options.override ? options.override(b) : b;
    },
  });
  const request: AccountsApp['request'] = (method, path, opts = {}) => {
    const headers: Record<string, string> = { 'x-forwarded-for': opts.ip ?? '127.0.0.1' };
    if (opts.body !== undefined || opts.raw !== undefined) headers['content-type'] = 'application/json';
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    return fetch(`${t.baseUrl}${path}`, {
      method,
      headers,
      body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
    });
  };
  const json: AccountsApp['json'] = async <T>(method: string, path: string, opts = {}) => {
    const res = await request(method, path, opts);
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T, headers: res.headers };
  };
  const register: AccountsApp['register'] = async (overrides = {}) => {
    const suffix = randomBytes(4).toString('hex');
    const account = {
      username: overrides.username ?? `user_${suffix}`,
      email: overrides.email ?? `user.${suffix}@example.com`,
      password: overrides.password ?? `Passw0rd-${suffix}`,
    };
    const res = await json<Tokens>('POST', '/api/v1/auth/register', {
      body: { ...account, ...(overrides.full_name ? { full_name: overrides.full_name } : {}) },
      ip: randomIp(),
    });
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { ...account, tokens: res.body };
  };
  const outbox: AccountsApp['outbox'] = (address) => {
    const dir = t.configuration.mail.outboxDir;
    let files: string[];
    try {
      files = readdirSync(dir)
        .filter((f) => f.endsWith('.eml'))
        .sort();
    } catch {
      return [];
    }
    return files
      .map((f) => parseMail(readFileSync(join(dir, f), 'utf8')))
      .filter((m) => m.to.toLowerCase().includes(address.toLowerCase()));
  };
  return { ...t, clock, google, request, json, register, outbox };
}

/** The 6-digit code of the latest verification mail to this address. */
export function latestVerificationCode(app: AccountsApp, email: string): string {
  const mails = app.outbox(email).filter((m) => /verification code/i.test(m.subject));
  const match = /\b(\d{6})\b/.exec(mails.at(-1)?.text ?? '');
  if (!match?.[1]) throw new Error(`no verification mail for ${email}`);
  return match[1];
}

/** The token of the latest password-reset mail to this address. */
export function latestResetToken(app: AccountsApp, email: string): string {
  const mails = app.outbox(email).filter((m) => /reset/i.test(m.subject));
  const match = /reset token into the app: (\S+)/.exec(mails.at(-1)?.text ?? '');
  if (!match?.[1]) throw new Error(`no reset mail for ${email}`);
  return match[1];
}

export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [header, payload] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header ?? '', 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>,
  };
}
