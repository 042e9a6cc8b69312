import { MongoClient } from 'mongodb';
import { AccountsApp, createAccountsApp, decodeJwt, randomIp, Tokens } from '../support/accounts.js';

async function storedUser(app: AccountsApp, username: string): Promise<{ failed_login_count: number; locked_until: Date | null }> {
  const client = new MongoClient(app.database.uri);
  try {
    const user = await client.db(app.database.name).collection('users').findOne({ username_normalized: username.toLowerCase() });
    return { failed_login_count: Number(user?.failed_login_count), locked_until: (user?.locked_until as Date | null) ?? null };
  } finally {
    await client.close();
  }
}

interface ErrorBody {
  detail: string;
  code: string;
  errors?: { field: string; message: string }[];
}

describe('registration and sign-in', () => {
  let app: AccountsApp;
  beforeAll(async () => (app = await createAccountsApp()));
  afterAll(() => app.close());

  describe('register', () => {
    it('answers 201 with a Token of two JWTs that carry exp', async () => {
      const res = await app.json<Tokens>('POST', '/api/v1/auth/register', {
        body: { username: 'Grace_Hopper', email: 'Grace@Example.COM', password: 'Cobol1959x', full_name: 'Grace Hopper' },
        ip: randomIp(),
      });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'token_type', 'user']);
      expect(res.body.token_type).toBe('bearer');
      expect(res.body.expires_in).toBe(900);
      const access = decodeJwt(res.body.access_token);
      const refresh = decodeJwt(res.body.refresh_token);
      expect(access.header.alg).toBe('HS256');
      expect(access.payload).toMatchObject({ typ: 'access' });
      expect(refresh.payload).toMatchObject({ typ: 'refresh' });
      for (const claims of [access.payload, refresh.payload]) {
        expect(typeof claims.exp).toBe('number');
        expect(typeof claims.jti).toBe('string');
        expect(typeof claims.sub).toBe('string');
        expect(typeof claims.sid).toBe('string');
      }
      expect(refresh.payload.sid).toBe(access.payload.sid);
      expect((refresh.payload.exp as number) - (refresh.payload.iat as number)).toBe(30 * 86_400);

      const me = await app.json<{ username: string; email: string; is_verified: boolean }>('GET', '/api/v1/users/me', {
        token: res.body.access_token,
      });
      expect(me.body).toMatchObject({ username: 'Grace_Hopper', email: 'grace@example.com', is_verified: false });
    });

    it.each([
      [
        'username, whatever its case',
        { username: 'grace_HOPPER', email: 'other1@example.com' },
        'An account with this username already exists',
      ],
      [
        'email, whatever its case',
        { username: 'someone_else', email: 'GRACE@example.com' },
        'An account with this email address already exists',
      ],
    ])('refuses a duplicate %s with 409', async (_label, taken, detail) => {
      const res = await app.json<ErrorBody>('POST', '/api/v1/auth/register', {
        body: { ...taken, password: 'Secret123x' },
        ip: randomIp(),
      });
      expect(res.status).toBe(409);
      expect(res.body.detail).toBe(detail);
    });

    it.each([
      ['a short username', { username: 'ab' }, 'username'],
      ['a username with spaces', { username: 'has space' }, 'username'],
      ['a 31-character username', { username: 'a'.repeat(31) }, 'username'],
      ['an invalid email', { email: 'not-an-email' }, 'email'],
      ['a password without a digit', { password: 'NoDigitsHere' }, 'password'],
      ['a password without upper case', { password: 'lower1234' }, 'password'],
      ['a 7-character password', { password: 'Abc1234' }, 'password'],
      ['a 129-character password', { password: `Aa1${'x'.repeat(126)}` }, 'password'],
    ])('refuses %s with 422 naming the field', async (_label, override, field) => {
      const body = { username: 'valid_name', email: 'valid@example.com', password: 'Valid1234', ...override };
      const res = await app.json<ErrorBody>('POST', '/api/v1/auth/register', { body, ip: randomIp() });
      expect(res.status).toBe(422);
      expect(res.body.errors?.map((e) => e.field)).toEqual([field]);
      expect(typeof res.body.detail).toBe('string');
    });

    it('refuses unknown fields (no self-promotion to admin)', async () => {
      const res = await app.json<ErrorBody>('POST', '/api/v1/auth/register', {
        body: { username: 'sneaky', email: 'sneaky@example.com', password: 'Valid1234', role: 'admin' },
        ip: randomIp(),
      });
      expect(res.status).toBe(422);
      expect(res.body.errors?.[0]?.field).toBe('role');
    });
  });

  describe('login', () => {
    it('signs in by username or email, case-insensitively, and records last_login', async () => {
      const account = await app.register();
      for (const login of [account.username, account.username.toUpperCase(), account.email, account.email.toUpperCase()]) {
        const res = await app.json<Tokens>('POST', '/api/v1/auth/login', {
          body: { username_or_email: login, password: account.password },
          ip: randomIp(),
        });
        expect(res.status).toBe(200);
        expect(res.body.token_type).toBe('bearer');
      }
      const me = await app.json<{ last_login: string | null }>('GET', '/api/v1/auth/me', { token: account.tokens.access_token });
      expect(me.body.last_login).not.toBeNull();
    });

    it('answers a wrong password and an unknown account identically', async () => {
      const account = await app.register();
      const wrong = await app.json<ErrorBody>('POST', '/api/v1/auth/login', {
        body: { username_or_email: account.username, password: 'Wrong1234' },
      });
      const unknown = await app.json<ErrorBody>('POST', '/api/v1/auth/login', {
        body: { username_or_email: 'nobody_here', password: 'Wrong1234' },
      });
      for (const res of [wrong, unknown]) {
        expect(res.status).toBe(401);
        expect(res.body.detail).toBe('Incorrect username/email or password');
        expect(res.body.detail.toLowerCase()).toContain('incorrect');
      }
      expect({ ...wrong.body, request_id: '', timestamp: '' }).toEqual({ ...unknown.body, request_id: '', timestamp: '' });
    });

    it('locks after 5 failures (423 + Retry-After), even for the right password, until the lock expires', async () => {
      const account = await app.register();
      const attempt = (password: string) =>
        app.json<ErrorBody & { locked_until?: string }>('POST', '/api/v1/auth/login', {
          body: { username_or_email: account.email, password },
          ip: randomIp(),
        });
      for (let i = 1; i <= 4; i += 1) expect((await attempt('Wrong1234')).status).toBe(401);
      const fifth = await attempt('Wrong1234');
      expect(fifth.status).toBe(423);
      expect(Number(fifth.headers.get('retry-after'))).toBe(900);
      expect(fifth.body.detail).toMatch(/locked/);

      const right = await attempt(account.password);
      expect(right.status).toBe(423);

      app.clock.advanceSeconds(899);
      expect((await attempt(account.password)).status).toBe(423);
      app.clock.advanceSeconds(2);
      expect((await attempt(account.password)).status).toBe(200);

      // the count started again from zero
      for (let i = 1; i <= 4; i += 1) expect((await attempt('Wrong1234')).status).toBe(401);
      expect((await attempt(account.password)).status).toBe(200);
    });

    it('an expired lock resets the count: the next failure is the first of five again', async () => {
      const account = await app.register();
      const attempt = (password: string) =>
        app.json<ErrorBody>('POST', '/api/v1/auth/login', { body: { username_or_email: account.username, password }, ip: randomIp() });
      for (let i = 1; i <= 5; i += 1) await attempt('Wrong1234');
      app.clock.advanceSeconds(901);
      for (let i = 1; i <= 4; i += 1) expect((await attempt('Wrong1234')).status).toBe(401);
      expect((await attempt('Wrong1234')).status).toBe(423);
    });

    it('counts parallel failures exactly: 12 at once lock the account', async () => {
      const account = await app.register();
      const results = await Promise.all(
        Array.from({ length: 12 }, () =>
          app.json<ErrorBody>('POST', '/api/v1/auth/login', {
            body: { username_or_email: account.username, password: 'Wrong1234' },
            ip: randomIp(),
          }),
        ),
      );
      expect(results.every((r) => r.status === 401 || r.status === 423)).toBe(true);
      expect(results.filter((r) => r.status === 401).length).toBe(4);
      expect(results.filter((r) => r.status === 423).length).toBe(8);
      const stored = await storedUser(app, account.username);
      expect(stored.failed_login_count).toBe(12);
      expect(stored.locked_until).not.toBeNull();
      const after = await app.json<ErrorBody>('POST', '/api/v1/auth/login', {
        body: { username_or_email: account.username, password: account.password },
        ip: randomIp(),
      });
      expect(after.status).toBe(423);
    });

    it('throttles sign-in attempts per account across client addresses (429 + Retry-After)', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 21; i += 1) {
        const res = await app.request('POST', '/api/v1/auth/login', {
          body: { username_or_email: 'Ghost_Account', password: 'Wrong1234' },
          ip: randomIp(),
        });
        statuses.push(res.status);
        if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
      expect(statuses[20]).toBe(429);
    });

    it('throttles registrations per client address', async () => {
      const ip = randomIp();
      const statuses: number[] = [];
      for (let i = 0; i < 21; i += 1) {
        const res = await app.request('POST', '/api/v1/auth/register', {
          body: { username: `flood_${i}`, email: `flood${i}@example.com`, password: 'Flood1234' },
          ip,
        });
        statuses.push(res.status);
      }
      expect(statuses.slice(0, 20).every((s) => s === 201)).toBe(true);
      expect(statuses[20]).toBe(429);
    });
  });
});
