import { AccountsApp, createAccountsApp, randomIp, Tokens } from '../support/accounts.js';
import { signGoogleIdToken } from '../support/google.js';

/**
 * An earlier released build of the mobile client reads every sign-in answer as the Token plus a
 * required `user`, and loads the profile from GET /auth/profile: both are served, and agree with
 * GET /auth/me.
 */
interface SignInBody extends Tokens {
  user: Record<string, unknown>;
}

describe('sign-in answers carry the user', () => {
  let app: AccountsApp;
  beforeAll(async () => (app = await createAccountsApp()));
  afterAll(() => app.close());

  const me = async (token: string): Promise<Record<string, unknown>> => {
    const res = await app.json<Record<string, unknown>>('GET', '/api/v1/auth/me', { token });
    expect(res.status).toBe(200);
    return res.body;
  };

  /** The answer is a complete Token plus `user`, which is what /auth/me answers for its access token. */
  const expectSignIn = async (status: number, body: SignInBody, expectedStatus: number): Promise<void> => {
    expect(status).toBe(expectedStatus);
    expect(body).toMatchObject({ token_type: 'bearer', expires_in: 900 });
    expect(typeof body.access_token).toBe('string');
    expect(typeof body.refresh_token).toBe('string');
    expect(body.user).toEqual(await me(body.access_token));
  };

  it('register', async () => {
    const res = await app.json<SignInBody>('POST', '/api/v1/auth/register', {
      body: { username: 'answer_reg', email: 'answer.reg@example.com', password: 'Answer123x', full_name: 'Reg' },
      ip: randomIp(),
    });
    await expectSignIn(res.status, res.body, 201);
    expect(res.body.user).toMatchObject({ username: 'answer_reg', email: 'answer.reg@example.com', is_verified: false, full_name: 'Reg' });
  });

  it('login, with last_login as it is after this sign-in', async () => {
    const account = await app.register();
    app.clock.advanceSeconds(30);
    const res = await app.json<SignInBody>('POST', '/api/v1/auth/login', {
      body: { username_or_email: account.username, password: account.password },
      ip: randomIp(),
    });
    await expectSignIn(res.status, res.body, 200);
    expect(res.body.user.last_login).toBe(app.clock.now().toISOString());
  });

  it('google', async () => {
    const res = await app.json<SignInBody>('POST', '/api/v1/auth/google', {
      body: { id_token: signGoogleIdToken({ sub: 'answer-google', email: 'answer.google@example.com' }), access_token: null },
      ip: randomIp(),
    });
    await expectSignIn(res.status, res.body, 200);
    expect(res.body.user).toMatchObject({ email: 'answer.google@example.com', is_verified: true });
  });

  it('refresh', async () => {
    const account = await app.register();
    const res = await app.json<SignInBody>('POST', '/api/v1/auth/refresh', {
      body: { refresh_token: account.tokens.refresh_token },
      ip: randomIp(),
    });
    await expectSignIn(res.status, res.body, 200);
    expect(res.body.user).toMatchObject({ username: account.username });
  });

  it('GET /auth/profile answers what GET /auth/me answers, and 401 without a token', async () => {
    const account = await app.register({ full_name: 'Profile Reader' });
    const profile = await app.json<Record<string, unknown>>('GET', '/api/v1/auth/profile', { token: account.tokens.access_token });
    expect(profile.status).toBe(200);
    expect(profile.body).toEqual(await me(account.tokens.access_token));
    expect(profile.body).toMatchObject({ username: account.username, full_name: 'Profile Reader' });

    const anonymous = await app.json<{ code: string; reason: string }>('GET', '/api/v1/auth/profile');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ code: 'missing_token', reason: 'missing_token' });
  });
});
