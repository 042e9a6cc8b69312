import { AccountsApp, createAccountsApp, randomIp, TestAccount, Tokens } from '../support/accounts.js';
import { runCli, type CliResult } from '../support/cli.js';

interface UserBody {
  id: string;
  username: string;
  email: string;
  is_active: boolean;
  is_verified: boolean;
  subscription_plan: string;
  role: string;
  created_at: string;
  full_name: string | null;
  last_login: string | null;
  preferred_region: string | null;
  avatar_url: string | null;
}

interface ErrorBody {
  detail: string;
  code: string;
  errors?: { field: string }[];
}

const cli = (app: AccountsApp, args: string[]): Promise<CliResult> => runCli(app.database, args);

describe('users, plans and admin', () => {
  let app: AccountsApp;
  let admin: TestAccount;

  beforeAll(async () => {
    app = await createAccountsApp();
    const created = await cli(app, ['create-admin', '--username', 'root_admin', '--email', 'Root@Example.com']);
    expect(created.code).toBe(0);
    const password = /Password \(shown once, store it safely\): (\S+)/.exec(created.stdout)?.[1];
    expect(password).toBeDefined();
    const login = await app.json<Tokens>('POST', '/api/v1/auth/login', {
      body: { username_or_email: 'root_admin', password },
      ip: randomIp(),
    });
    expect(login.status).toBe(200);
    admin = { username: 'root_admin', email: 'root@example.com', password: password!, tokens: login.body };
  }, 120_000);

  afterAll(() => app.close());

  describe('the User body matches the mobile client contract', () => {
    it('GET /users/me and GET /auth/me return the same User with every required field', async () => {
      const account = await app.register({ full_name: 'Contract Check' });
      const a = await app.json<UserBody>('GET', '/api/v1/users/me', { token: account.tokens.access_token });
      const b = await app.json<UserBody>('GET', '/api/v1/auth/me', { token: account.tokens.access_token });
      expect(a.status).toBe(200);
      expect(a.body).toEqual(b.body);
      const user = a.body;
      expect(typeof user.id).toBe('string');
      expect(user.username).toBe(account.username);
      expect(user.email).toBe(account.email);
      expect(typeof user.is_active).toBe('boolean');
      expect(typeof user.is_verified).toBe('boolean');
      expect(user.subscription_plan).toBe('free');
      expect(new Date(user.created_at).toISOString()).toBe(user.created_at);
      expect(user).toHaveProperty('full_name', 'Contract Check');
      for (const optional of ['last_login', 'preferred_region', 'avatar_url']) expect(user).toHaveProperty(optional);
      expect(JSON.stringify(user)).not.toMatch(/password|hash/);
    });
  });

  describe('profile', () => {
    it('PUT /users/me updates the allowed fields, null clears them, others are refused', async () => {
      const account = await app.register();
      const token = account.tokens.access_token;
      const updated = await app.json<UserBody>('PUT', '/api/v1/users/me', {
        token,
        body: { full_name: 'New Name', preferred_region: 'eu-west', avatar_url: 'https://example.com/a.png' },
      });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ full_name: 'New Name', preferred_region: 'eu-west', avatar_url: 'https://example.com/a.png' });
      const cleared = await app.json<UserBody>('PUT', '/api/v1/users/me/', { token, body: { avatar_url: null } });
      expect(cleared.body).toMatchObject({ full_name: 'New Name', avatar_url: null });
      for (const body of [
        { avatar_url: 'javascript:alert(1)' },
        { preferred_region: 'EU WEST' },
        { email: 'new@example.com' },
        { subscription_plan: 'pro' },
      ]) {
        const refused = await app.json<ErrorBody>('PUT', '/api/v1/users/me', { token, body });
        expect(refused.status).toBe(422);
      }
    });

    it('DELETE /users/me removes the account; the username becomes free again', async () => {
      const account = await app.register();
      expect((await app.json('DELETE', '/api/v1/users/me', { token: account.tokens.access_token })).status).toBe(200);
      const again = await app.json('POST', '/api/v1/auth/register', {
        body: { username: account.username, email: account.email, password: account.password },
        ip: randomIp(),
      });
      expect(again.status).toBe(201);
    });
  });

  describe('plans', () => {
    it('lists every plan with its quotas, without authentication', async () => {
      const res = await app.json<
        {
          name: string;
          max_environments: number;
          default_resources: Record<string, string>;
          max_resources: Record<string, string>;
          idle_timeout_minutes: number;
        }[]
      >('GET', '/api/v1/plans');
      expect(res.status).toBe(200);
      expect(res.body.map((p) => p.name)).toEqual(['free', 'starter', 'pro', 'team']);
      expect(res.body[0]).toEqual({
        name: 'free',
        display_name: 'Free',
        max_environments: 1,
        default_resources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
        max_resources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
        idle_timeout_minutes: 30,
      });
      expect(res.body.map((p) => p.max_environments)).toEqual([1, 3, 10, 25]);
      expect(res.body.map((p) => p.max_resources.memory)).toEqual(['1Gi', '2Gi', '4Gi', '8Gi']);
    });
  });

  describe('admin', () => {
    it('refuses admin routes to ordinary users (403) and to anonymous callers (401)', async () => {
      const account = await app.register();
      for (const [method, path] of [
        ['GET', '/api/v1/admin/users'],
        ['GET', `/api/v1/admin/users/${admin.tokens.access_token.length}`],
        ['PATCH', '/api/v1/admin/users/000000000000000000000000'],
        ['GET', '/api/v1/admin/audit-events'],
      ] as const) {
        const forbidden = await app.json<ErrorBody>(method, path, {
          token: account.tokens.access_token,
          body: method === 'PATCH' ? { role: 'admin' } : undefined,
        });
        expect(forbidden.status).toBe(403);
        expect(forbidden.body.detail).toBe('This action requires the admin role');
        expect((await app.json(method, path)).status).toBe(401);
      }
    });

    it('lists and searches users with pagination', async () => {
      await app.register({ username: 'findme_one' });
      await app.register({ username: 'findme_two' });
      await app.register({ username: 'findme_three' });
      const page = await app.json<{ items: UserBody[]; total: number; page: number; page_size: number }>(
        'GET',
        '/api/v1/admin/users?query=FINDME&page=1&page_size=2',
        { token: admin.tokens.access_token },
      );
      expect(page.status).toBe(200);
      expect(page.body.total).toBe(3);
      expect(page.body.items).toHaveLength(2);
      expect(page.body.page_size).toBe(2);
      const second = await app.json<{ items: UserBody[] }>('GET', '/api/v1/admin/users?query=findme&page=2&page_size=2', {
        token: admin.tokens.access_token,
      });
      expect(second.body.items).toHaveLength(1);
      const regexInput = await app.json<{ total: number }>('GET', '/api/v1/admin/users?query=.*', { token: admin.tokens.access_token });
      expect(regexInput.body.total).toBe(0);
      expect((await app.json('GET', '/api/v1/admin/users?page_size=1000', { token: admin.tokens.access_token })).status).toBe(422);
    });

    it("changes a user's plan, role and active flag, audits it, and deactivation ends their sessions at once", async () => {
      const account = await app.register();
      const me = await app.json<UserBody>('GET', '/api/v1/users/me', { token: account.tokens.access_token });
      const res = await app.json<UserBody>('PATCH', `/api/v1/admin/users/${me.body.id}`, {
        token: admin.tokens.access_token,
        body: { subscription_plan: 'pro' },
      });
      expect(res.status).toBe(200);
      expect(res.body.subscription_plan).toBe('pro');
      const bad = await app.json<ErrorBody>('PATCH', `/api/v1/admin/users/${me.body.id}`, {
        token: admin.tokens.access_token,
        body: { subscription_plan: 'platinum' },
      });
      expect(bad.status).toBe(422);

      const off = await app.json<UserBody>('PATCH', `/api/v1/admin/users/${me.body.id}`, {
        token: admin.tokens.access_token,
        body: { is_active: false },
      });
      expect(off.body.is_active).toBe(false);
      expect((await app.json('GET', '/api/v1/users/me', { token: account.tokens.access_token })).status).toBe(401);
      const login = await app.json<ErrorBody>('POST', '/api/v1/auth/login', {
        body: { username_or_email: account.username, password: account.password },
        ip: randomIp(),
      });
      expect(login.status).toBe(403);

      const audit = await app.json<{
        items: { action: string; actor_username: string; target_id: string; details: Record<string, unknown> }[];
      }>('GET', `/api/v1/admin/audit-events?action=admin.user_updated&target_id=${me.body.id}`, { token: admin.tokens.access_token });
      expect(audit.body.items.map((e) => e.details)).toEqual([
        { is_active: { from: true, to: false } },
        { subscription_plan: { from: 'free', to: 'pro' } },
      ]);
      expect(audit.body.items.every((e) => e.actor_username === 'root_admin')).toBe(true);
    });

    it('refuses to let an admin demote or deactivate themselves', async () => {
      const self = await app.json<UserBody>('GET', '/api/v1/users/me', { token: admin.tokens.access_token });
      const res = await app.json<ErrorBody>('PATCH', `/api/v1/admin/users/${self.body.id}`, {
        token: admin.tokens.access_token,
        body: { role: 'user' },
      });
      expect(res.status).toBe(409);
    });

    it('answers 404 for an unknown user', async () => {
      expect((await app.json('GET', '/api/v1/admin/users/000000000000000000000000', { token: admin.tokens.access_token })).status).toBe(
        404,
      );
      expect((await app.json('GET', '/api/v1/admin/users/not-an-id', { token: admin.tokens.access_token })).status).toBe(404);
    });

    it('records sign-ins, failures and lockouts in the audit log, without secrets', async () => {
      const account = await app.register();
      for (let i = 0; i < 5; i += 1)
        await app.json('POST', '/api/v1/auth/login', {
          body: { username_or_email: account.username, password: 'Wrong1234' },
          ip: '192.0.2.77',
        });
      const page = await app.json<{ items: { action: string; ip: string }[]; total: number }>(
        'GET',
        '/api/v1/admin/audit-events?page_size=100',
        { token: admin.tokens.access_token },
      );
      const actions = page.body.items.map((e) => e.action);
      expect(actions).toContain('auth.lockout');
      expect(actions).toContain('auth.login_failed');
      expect(actions).toContain('auth.register');
      expect(page.body.items.find((e) => e.action === 'auth.lockout')?.ip).toBe('192.0.2.77');
      expect(JSON.stringify(page.body)).not.toContain('Wrong1234');
      expect(JSON.stringify(page.body)).not.toContain(account.password);
    });
  });

  describe('CLI', () => {
    it('sets plans and roles by username or email, and refuses bad input with exit code 2', async () => {
      const account = await app.register();
      const plan = await cli(app, ['set-plan', account.email, 'team']);
      expect(plan.code).toBe(0);
      expect(plan.stdout).toContain('plan=team');
      const role = await cli(app, ['set-role', account.username, 'admin']);
      expect(role.code).toBe(0);
      const me = await app.json<UserBody>('GET', '/api/v1/users/me', { token: account.tokens.access_token });
      expect(me.body).toMatchObject({ subscription_plan: 'team', role: 'admin' });

      expect((await cli(app, ['set-plan', account.username, 'platinum'])).code).toBe(2);
      expect((await cli(app, ['set-plan', 'nobody_at_all', 'pro'])).code).toBe(2);
      expect((await cli(app, ['frobnicate'])).code).toBe(2);
    }, 60_000);

    it('create-admin promotes an existing account instead of duplicating it', async () => {
      const account = await app.register();
      const res = await cli(app, ['create-admin', '--username', account.username, '--email', account.email]);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('Existing account is now an admin');
      expect(res.stdout).not.toContain('Password');
    }, 60_000);
  });
});
