import { AccountsApp, createAccountsApp, latestVerificationCode, randomIp, Tokens } from '../support/accounts.js';
import { signGoogleIdToken } from '../support/google.js';

interface UserBody {
  id: string;
  username: string;
  email: string;
  is_verified: boolean;
  full_name: string | null;
  avatar_url: string | null;
}

describe('Google sign-in', () => {
  let app: AccountsApp;
  beforeAll(async () => (app = await createAccountsApp()));
  afterAll(() => app.close());

  const google = (idToken: string) =>
    app.json<Tokens & { detail: string }>('POST', '/api/v1/auth/google', {
      body: { id_token: idToken, access_token: null },
      ip: randomIp(),
    });
  const me = async (tokens: Tokens) => (await app.json<UserBody>('GET', '/api/v1/users/me', { token: tokens.access_token })).body;

  it('creates an account from a new Google identity, with a username from the email', async () => {
    const res = await google(
      signGoogleIdToken({
        sub: 'g-new-1',
        email: 'Jean.Luc+devpocket@Example.com',
        name: 'Jean-Luc',
        picture: 'https://example.com/p.png',
      }),
    );
    expect(res.status).toBe(200);
    const user = await me(res.body);
    expect(user).toMatchObject({
      username: 'jean_luc',
      email: 'jean.luc+devpocket@example.com',
      is_verified: true,
      full_name: 'Jean-Luc',
      avatar_url: 'https://example.com/p.png',
    });
  });

  it('signs the same Google identity into the same account next time', async () => {
    const first = await me((await google(signGoogleIdToken({ sub: 'g-same', email: 'same.person@example.com' }))).body);
    const again = await me((await google(signGoogleIdToken({ sub: 'g-same', email: 'same.person@example.com' }))).body);
    expect(again.id).toBe(first.id);
  });

  it('matches by subject even when the Google email changed', async () => {
    const first = await me((await google(signGoogleIdToken({ sub: 'g-moved', email: 'old.address@example.com' }))).body);
    const later = await me((await google(signGoogleIdToken({ sub: 'g-moved', email: 'new.address@example.com' }))).body);
    expect(later.id).toBe(first.id);
  });

  it('links to an existing verified password account with the same email; the password keeps working', async () => {
    const account = await app.register({ email: 'linked.user@example.com' });
    const code = latestVerificationCode(app, account.email);
    expect(
      (await app.json('POST', '/api/v1/auth/verify-email', { token: account.tokens.access_token, body: { token: code } })).status,
    ).toBe(200);
    const res = await google(signGoogleIdToken({ sub: 'g-link', email: 'LINKED.user@example.com' }));
    const user = await me(res.body);
    expect(user.username).toBe(account.username);
    expect(user.is_verified).toBe(true);
    const login = await app.json('POST', '/api/v1/auth/login', {
      body: { username_or_email: account.email, password: account.password },
      ip: randomIp(),
    });
    expect(login.status).toBe(200);
    expect((await app.json('GET', '/api/v1/users/me', { token: account.tokens.access_token })).status).toBe(200);
  });

  it('takes an unverified account over from whoever pre-registered the address: their password and sessions end', async () => {
    const squatter = await app.register({ email: 'victim@example.com' });
    const res = await google(signGoogleIdToken({ sub: 'g-victim', email: 'victim@example.com' }));
    expect(res.status).toBe(200);
    const user = await me(res.body);
    expect(user.is_verified).toBe(true);
    expect((await app.json('GET', '/api/v1/users/me', { token: squatter.tokens.access_token })).status).toBe(401);
    const login = await app.json('POST', '/api/v1/auth/login', {
      body: { username_or_email: squatter.email, password: squatter.password },
      ip: randomIp(),
    });
    expect(login.status).toBe(401);
  });

  it('derives distinct usernames when they collide', async () => {
    await app.register({ username: 'collide' });
    const a = await me((await google(signGoogleIdToken({ sub: 'g-c1', email: 'collide@one.example' }))).body);
    const b = await me((await google(signGoogleIdToken({ sub: 'g-c2', email: 'collide+x@two.example' }))).body);
    const c = await me((await google(signGoogleIdToken({ sub: 'g-c3', email: 'Collide@three.example' }))).body);
    expect([a.username, b.username, c.username]).toEqual(['collide-2', 'collide-3', 'collide-4']);
  });

  it('handles short, dotted and symbol-only local parts', async () => {
    const short = await me((await google(signGoogleIdToken({ sub: 'g-short', email: 'x@example.com' }))).body);
    expect(short.username).toMatch(/^[A-Za-z0-9_-]{3,30}$/);
    const dots = await me(
      (await google(signGoogleIdToken({ sub: 'g-dots', email: 'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q@example.com' }))).body,
    );
    expect(dots.username).toMatch(/^[A-Za-z0-9_-]{3,30}$/);
    const symbols = await me((await google(signGoogleIdToken({ sub: 'g-sym', email: '!!!@example.com' }))).body);
    expect(symbols.username).toMatch(/^[A-Za-z0-9_-]{3,30}$/);
  });

  it('refuses an unverified email, a wrong audience, and an untrusted signature', async () => {
    const unverified = await google(signGoogleIdToken({ sub: 'g-unv', email: 'unverified@example.com', email_verified: false }));
    expect(unverified.status).toBe(401);
    expect(unverified.body.detail).toMatch(/verified email/);
    const audience = await google(
      signGoogleIdToken({ sub: 'g-aud', email: 'aud@example.com', aud: 'someone-else.apps.googleusercontent.com' }),
    );
    expect(audience.status).toBe(401);
    const untrusted = await google(signGoogleIdToken({ sub: 'g-key', email: 'key@example.com' }, { key: 'untrusted' }));
    expect(untrusted.status).toBe(401);
  });

  it('deleting the account removes its Google link', async () => {
    const res = await google(signGoogleIdToken({ sub: 'g-disabled', email: 'disabled.person@example.com' }));
    const deleted = await app.json('DELETE', '/api/v1/users/me', { token: res.body.access_token });
    expect(deleted.status).toBe(200);
    // the identity went with the account: signing in again creates a new one
    const again = await google(signGoogleIdToken({ sub: 'g-disabled', email: 'disabled.person@example.com' }));
    expect(again.status).toBe(200);
  });
});

describe('Google sign-in without configured client ids', () => {
  it('answers 503 with a reason', async () => {
    const app = await createAccountsApp({ env: { GOOGLE_CLIENT_IDS: '' } });
    try {
      const res = await app.json<{ detail: string }>('POST', '/api/v1/auth/google', {
        body: { id_token: signGoogleIdToken({ sub: 'x' }) },
      });
      expect(res.status).toBe(503);
      expect(res.body.detail).toBe('Google sign-in is not configured on this server');
    } finally {
      await app.close();
    }
  });
});
