import { createHmac } from 'node:crypto';
import { SignJWT } from 'jose';
import { AccountsApp, createAccountsApp, decodeJwt, randomIp, Tokens } from '../support/accounts.js';
import { TEST_JWT_SECRET } from '../support/test-app.js';

interface ErrorBody {
  detail: string;
  code: string;
  reason?: string;
}

/** A JWT shaped like ours but signed with something else (or nothing). */
function forge(payload: Record<string, unknown>, options: { alg: 'none' | 'HS256'; secret?: string }): string {
  const header = Buffer.from(JSON.stringify({ alg: options.alg, typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  if (options.alg === 'none') return `${header}.${body}.`;
  const signature = createHmac('sha256', options.secret ?? '')
    .update(`${header}.${body}`)
    .digest('base64url');
  return `${header}.${body}.${signature}`;
}

describe('tokens and sessions', () => {
  let app: AccountsApp;
  beforeAll(async () => (app = await createAccountsApp()));
  afterAll(() => app.close());

  const me = (token: string) => app.json<ErrorBody & { id?: string }>('GET', '/api/v1/users/me', { token });
  const refresh = (refreshToken: string) =>
    app.json<Tokens & ErrorBody>('POST', '/api/v1/auth/refresh', { body: { refresh_token: refreshToken }, ip: randomIp() });

  it('rotates refresh tokens: each use returns a new pair of the same session', async () => {
    const account = await app.register();
    const first = await refresh(account.tokens.refresh_token);
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).not.toBe(account.tokens.refresh_token);
    expect(decodeJwt(first.body.refresh_token).payload.sid).toBe(decodeJwt(account.tokens.refresh_token).payload.sid);
    expect((await me(first.body.access_token)).status).toBe(200);
    const second = await refresh(first.body.refresh_token);
    expect(second.status).toBe(200);
  });

  it('gives a client that lost the answer a valid pair when it retries within the grace window', async () => {
    const account = await app.register();
    const lost = await refresh(account.tokens.refresh_token);
    expect(lost.status).toBe(200);
    app.clock.advanceSeconds(20);
    const retried = await refresh(account.tokens.refresh_token);
    expect(retried.status).toBe(200);
    expect(decodeJwt(retried.body.refresh_token).payload.sid).toBe(decodeJwt(account.tokens.refresh_token).payload.sid);
    expect((await me(retried.body.access_token)).status).toBe(200);
    // the retried pair keeps working
    expect((await refresh(retried.body.refresh_token)).status).toBe(200);
  });

  it('revokes the whole family when a used refresh token comes back after the window', async () => {
    const account = await app.register();
    const rotated = await refresh(account.tokens.refresh_token);
    expect(rotated.status).toBe(200);
    app.clock.advanceSeconds(31);
    const reuse = await refresh(account.tokens.refresh_token);
    expect(reuse.status).toBe(401);
    expect(reuse.body.reason).toBe('refresh_token_reuse');
    // the legitimate holder is signed out too: access and refresh of that session are dead
    expect((await refresh(rotated.body.refresh_token)).status).toBe(401);
    expect((await me(rotated.body.access_token)).status).toBe(401);
    // other sessions of the same user are untouched
    const other = await app.json<Tokens>('POST', '/api/v1/auth/login', {
      body: { username_or_email: account.username, password: account.password },
      ip: randomIp(),
    });
    expect((await me(other.body.access_token)).status).toBe(200);
  });

  it('refuses a refresh token as an access token, and an access token as a refresh token', async () => {
    const account = await app.register();
    const asAccess = await me(account.tokens.refresh_token);
    expect(asAccess.status).toBe(401);
    expect(asAccess.body.reason).toBe('wrong_token_type');
    const asRefresh = await refresh(account.tokens.access_token);
    expect(asRefresh.status).toBe(401);
    expect(asRefresh.body.reason).toBe('wrong_token_type');
  });

  it('refuses tokens signed with another key, with alg none, or tampered with', async () => {
    const account = await app.register();
    const { payload } = decodeJwt(account.tokens.access_token);
    const otherKey = await new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('another-secret-of-sufficient-length-0123456789'));
    const none = forge(payload, { alg: 'none' });
    const [h, , s] = account.tokens.access_token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: '000000000000000000000000' })).toString('base64url')}.${s}`;
    for (const token of [otherKey, none, tampered, 'not.a.jwt', 'garbage']) {
      const res = await me(token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    // the real secret with a different algorithm family is refused too (HS256 only via jose; HS512 is not accepted)
    const hs512 = await new SignJWT(payload).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect((await me(hs512)).status).toBe(401);
  });

  it('refuses expired access tokens with reason token_expired; refresh still works', async () => {
    const account = await app.register();
    app.clock.advanceSeconds(901);
    const res = await me(account.tokens.access_token);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('token_expired');
    const renewed = await refresh(account.tokens.refresh_token);
    expect(renewed.status).toBe(200);
    expect((await me(renewed.body.access_token)).status).toBe(200);
  });

  it('refuses expired refresh tokens', async () => {
    const account = await app.register();
    app.clock.advanceSeconds(30 * 86_400 + 1);
    const res = await refresh(account.tokens.refresh_token);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('token_expired');
  });

  it('requires a token on protected routes', async () => {
    const res = await app.json<ErrorBody>('GET', '/api/v1/users/me');
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('missing_token');
  });

  it('logout ends the current session only', async () => {
    const account = await app.register();
    const second = await app.json<Tokens>('POST', '/api/v1/auth/login', {
      body: { username_or_email: account.username, password: account.password },
      ip: randomIp(),
    });
    const out = await app.json<{ message: string }>('POST', '/api/v1/auth/logout', { token: account.tokens.access_token });
    expect(out.status).toBe(200);
    expect((await me(account.tokens.access_token)).status).toBe(401);
    expect((await refresh(account.tokens.refresh_token)).status).toBe(401);
    expect((await me(second.body.access_token)).status).toBe(200);
  });

  it('change-password signs out the other sessions, keeps this one, and the new password works', async () => {
    const account = await app.register();
    const other = await app.json<Tokens>('POST', '/api/v1/auth/login', {
      body: { username_or_email: account.username, password: account.password },
      ip: randomIp(),
    });
    const wrong = await app.json<ErrorBody>('POST', '/api/v1/auth/change-password', {
      token: account.tokens.access_token,
      body: { current_password: 'Nope12345', new_password: 'Brand1New2' },
    });
    expect(wrong.status).toBe(400);
    const weak = await app.json<ErrorBody>('POST', '/api/v1/auth/change-password', {
      token: account.tokens.access_token,
      body: { current_password: account.password, new_password: 'weak' },
    });
    expect(weak.status).toBe(422);
    const ok = await app.json<{ message: string }>('POST', '/api/v1/auth/change-password', {
      token: account.tokens.access_token,
      body: { current_password: account.password, new_password: 'Brand1New2' },
    });
    expect(ok.status).toBe(200);
    expect((await me(account.tokens.access_token)).status).toBe(200);
    expect((await me(other.body.access_token)).status).toBe(401);
    expect((await refresh(other.body.refresh_token)).status).toBe(401);
    const login = (password: string) =>
      app.json('POST', '/api/v1/auth/login', { body: { username_or_email: account.username, password }, ip: randomIp() });
    expect((await login(account.password)).status).toBe(401);
    expect((await login('Brand1New2')).status).toBe(200);
  });

  it('tokens of a deactivated or deleted account stop working at once', async () => {
    const account = await app.register();
    const deleted = await app.json<{ message: string }>('DELETE', '/api/v1/users/me', { token: account.tokens.access_token });
    expect(deleted.status).toBe(200);
    expect((await me(account.tokens.access_token)).status).toBe(401);
    expect((await refresh(account.tokens.refresh_token)).status).toBe(401);
    const login = await app.json('POST', '/api/v1/auth/login', {
      body: { username_or_email: account.username, password: account.password },
      ip: randomIp(),
    });
    expect(login.status).toBe(401);
  });
});
