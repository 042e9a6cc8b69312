import { AccountsApp, createAccountsApp, latestResetToken, latestVerificationCode, randomIp, Tokens } from '../support/accounts.js';
import { startSmtpServer, parseMail, TestSmtpServer } from '../support/smtp-server.js';

interface ErrorBody {
  detail: string;
  code: string;
}

describe('email verification and password reset', () => {
  let app: AccountsApp;
  beforeAll(async () => (app = await createAccountsApp()));
  afterAll(() => app.close());

  const verify = (token: string, code: string) =>
    app.json<ErrorBody & { is_verified?: boolean }>('POST', '/api/v1/auth/verify-email', { token, body: { token: code } });
  const resend = (token: string) => app.json<ErrorBody>('POST', '/api/v1/auth/resend-verification', { token });
  const wrongCode = (code: string): string => String((Number(code) + 1) % 1_000_000).padStart(6, '0');
  /** A fresh access token after the clock moved past the old one's 15 minutes. */
  const signIn = async (account: { username: string; password: string }): Promise<string> =>
    (
      await app.json<Tokens>('POST', '/api/v1/auth/login', {
        body: { username_or_email: account.username, password: account.password },
        ip: randomIp(),
      })
    ).body.access_token;

  describe('verification codes', () => {
    it('mails a 6-digit code at registration that verifies the address once', async () => {
      const account = await app.register();
      const code = latestVerificationCode(app, account.email);
      expect(code).toMatch(/^\d{6}$/);
      const ok = await verify(account.tokens.access_token, code);
      expect(ok.status).toBe(200);
      expect(ok.body.is_verified).toBe(true);
      const me = await app.json<{ is_verified: boolean }>('GET', '/api/v1/users/me', { token: account.tokens.access_token });
      expect(me.body.is_verified).toBe(true);
      // already verified: resending is pointless
      expect((await resend(account.tokens.access_token)).status).toBe(409);
    });

    it('refuses a wrong code, then after 5 wrong tries refuses even the right one until a new code', async () => {
      const account = await app.register();
      const code = latestVerificationCode(app, account.email);
      const first = await verify(account.tokens.access_token, wrongCode(code));
      expect(first.status).toBe(400);
      expect(first.body.detail).toMatch(/incorrect; 4 attempt/);
      for (let i = 0; i < 4; i += 1) expect((await verify(account.tokens.access_token, wrongCode(code))).status).toBe(400);
      const blocked = await verify(account.tokens.access_token, code);
      expect(blocked.status).toBe(400);
      expect(blocked.body.detail).toMatch(/Too many wrong codes/);

      app.clock.advanceSeconds(61);
      expect((await resend(account.tokens.access_token)).status).toBe(202);
      const fresh = latestVerificationCode(app, account.email);
      expect((await verify(account.tokens.access_token, fresh)).status).toBe(200);
    });

    it('refuses an expired code (24 h)', async () => {
      const account = await app.register();
      const code = latestVerificationCode(app, account.email);
      app.clock.advanceSeconds(24 * 3600 + 1);
      const res = await verify(await signIn(account), code);
      expect(res.status).toBe(400);
      expect(res.body.detail).toMatch(/expired/);
    });

    it('a new code replaces the old one', async () => {
      const account = await app.register();
      const old = latestVerificationCode(app, account.email);
      app.clock.advanceSeconds(61);
      expect((await resend(account.tokens.access_token)).status).toBe(202);
      const fresh = latestVerificationCode(app, account.email);
      // A resend never issues the code it replaces.
      expect(fresh).not.toBe(old);
      expect((await verify(account.tokens.access_token, old)).status).toBe(400);
      expect((await verify(account.tokens.access_token, fresh)).status).toBe(200);
    });

    it('throttles resends: one a minute, five an hour (429 + Retry-After)', async () => {
      const account = await app.register();
      const soon = await resend(account.tokens.access_token);
      expect(soon.status).toBe(429);
      expect(Number(soon.headers.get('retry-after'))).toBeGreaterThan(0);
      for (let i = 0; i < 4; i += 1) {
        app.clock.advanceSeconds(61);
        expect((await resend(account.tokens.access_token)).status).toBe(202);
      }
      app.clock.advanceSeconds(61);
      expect((await resend(account.tokens.access_token)).status).toBe(429);
      app.clock.advanceSeconds(3600);
      expect((await resend(await signIn(account))).status).toBe(202);
    });

    it('validates the code format (422)', async () => {
      const account = await app.register();
      expect((await verify(account.tokens.access_token, '12ab56')).status).toBe(422);
    });
  });

  describe('password reset', () => {
    const forgot = (email: string, ip = randomIp()) =>
      app.json<{ message: string }>('POST', '/api/v1/auth/forgot-password', { body: { email }, ip });
    const reset = (token: string, password: string) =>
      app.json<ErrorBody>('POST', '/api/v1/auth/reset-password', { body: { token, new_password: password }, ip: randomIp() });
    const login = (user: string, password: string) =>
      app.json<Tokens>('POST', '/api/v1/auth/login', { body: { username_or_email: user, password }, ip: randomIp() });

    it('answers 202 the same way whether or not the address has an account', async () => {
      const known = await app.register();
      const a = await forgot(known.email);
      const b = await forgot('nobody.at.all@example.com');
      expect(a.status).toBe(202);
      expect(b.status).toBe(202);
      expect(a.body).toEqual(b.body);
      expect(app.outbox('nobody.at.all@example.com')).toEqual([]);
    });

    it('resets with the mailed token once, and signs out every session', async () => {
      const account = await app.register();
      await forgot(account.email.toUpperCase());
      const token = latestResetToken(app, account.email);
      const res = await reset(token, 'Reset1Password');
      expect(res.status).toBe(200);
      expect((await app.json('GET', '/api/v1/users/me', { token: account.tokens.access_token })).status).toBe(401);
      expect((await login(account.username, account.password)).status).toBe(401);
      expect((await login(account.username, 'Reset1Password')).status).toBe(200);
      const again = await reset(token, 'Another1Password');
      expect(again.status).toBe(400);
      expect(again.body.detail).toMatch(/invalid, expired or already used/);
    });

    it('refuses an expired token (1 h) and a made-up one', async () => {
      const account = await app.register();
      await forgot(account.email);
      const token = latestResetToken(app, account.email);
      app.clock.advanceSeconds(3601);
      expect((await reset(token, 'Reset1Password')).status).toBe(400);
      expect((await reset('made-up-token', 'Reset1Password')).status).toBe(400);
      expect((await login(account.username, account.password)).status).toBe(200);
    });

    it('a reset also clears a lockout', async () => {
      const account = await app.register();
      for (let i = 0; i < 5; i += 1) await login(account.username, 'Wrong1234');
      expect((await login(account.username, account.password)).status).toBe(423);
      await forgot(account.email);
      expect((await reset(latestResetToken(app, account.email), 'Unlock1Me')).status).toBe(200);
      expect((await login(account.username, 'Unlock1Me')).status).toBe(200);
    });

    it('throttles forgot-password per address (429)', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i += 1) statuses.push((await forgot('Throttled@Example.com')).status);
      expect(statuses).toEqual([202, 202, 202, 202, 202, 429]);
    });
  });
});

describe('mail over real SMTP', () => {
  let smtp: TestSmtpServer;
  let app: AccountsApp;
  beforeAll(async () => {
    smtp = await startSmtpServer({ user: 'devpocket', pass: 'smtp-Secret-1' });
    app = await createAccountsApp({ env: { MAIL_URL: smtp.url, MAIL_FROM: 'DevPocket <no-reply@devpocket.test>' } });
  });
  afterAll(async () => {
    await app?.close();
    await smtp?.stop();
  });

  it('delivers the verification code through the SMTP server, and the code verifies', async () => {
    const account = await app.register({ email: 'smtp.reader@example.com' });
    const received = await smtp.waitForMessage((m) => m.to.includes('smtp.reader@example.com'));
    expect(received.user).toBe('devpocket');
    const mail = parseMail(received.raw);
    expect(mail.from).toContain('no-reply@devpocket.test');
    const code = /\b(\d{6})\b/.exec(mail.text ?? '')?.[1];
    expect(code).toMatch(/^\d{6}$/);
    const res = await app.json<{ is_verified: boolean }>('POST', '/api/v1/auth/verify-email', {
      token: account.tokens.access_token,
      body: { token: code },
    });
    expect(res.status).toBe(200);
    expect(res.body.is_verified).toBe(true);
  });
});
