import type { INestApplication } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { Request } from 'express';
import { aUser, createAccountsUnit, type AccountsUnit } from '../../../test/support/accounts-unit.js';
import { AppError } from '../../common/errors/app-error.js';
import { HttpExceptionFilter } from '../../common/errors/http-exception.filter.js';
import { RouteTable } from '../../common/errors/route-table.js';
import { createValidationPipe } from '../../common/errors/validation.js';
import { AuthController } from '../auth.controller.js';
import { LoginLockout } from './login-lockout.js';
import { LoginLockoutGuard } from './login-lockout.guard.js';

const PASSWORD = 'Analytical1';

function loginContext(body: unknown): ExecutionContextHost {
  const req = { body } as Request;
  return new ExecutionContextHost([req, {}, () => undefined], AuthController, AuthController.prototype.login);
}

async function thrown(promise: Promise<unknown>): Promise<AppError> {
  const error: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof AppError)) throw new Error(`expected an AppError, got ${String(error)}`);
  return error;
}

describe('LoginLockoutGuard', () => {
  let unit: AccountsUnit;
  let guard: LoginLockoutGuard;

  beforeEach(async () => {
    unit = await createAccountsUnit({ providers: [LoginLockout, LoginLockoutGuard] });
    guard = unit.moduleRef.get(LoginLockoutGuard);
  });
  afterEach(() => unit.moduleRef.close());

  it('refuses a locked account with 423, Retry-After and locked_until, before any password work', async () => {
    const until = new Date(unit.clock.nowMs() + 600_000);
    unit.users.add(aUser({ failedLoginCount: 5, lockedUntil: until }));
    const error = await thrown(guard.canActivate(loginContext({ username_or_email: 'ada_lovelace', password: PASSWORD })));
    expect(error.status).toBe(423);
    expect(error.code).toBe('account_locked');
    expect(error.detail).toBe('Too many failed sign-ins; the account is locked for 10 more minute(s)');
    expect(error.options.headers).toEqual({ 'Retry-After': '600' });
    expect(error.options.extra).toEqual({ locked_until: until.toISOString() });
    expect(unit.hasher.calls).toEqual([]);
    expect(unit.audit.entries).toEqual([]);
  });

  it('finds the account the sign-in would: by email or by username, trimmed, in any case', async () => {
    unit.users.add(aUser({ lockedUntil: new Date(unit.clock.nowMs() + 1000) }));
    for (const login of ['  ADA_Lovelace ', 'Ada@Example.com']) {
      expect((await thrown(guard.canActivate(loginContext({ username_or_email: login, password: 'x' })))).status).toBe(423);
    }
  });

  it('lets an account that is not locked through', async () => {
    unit.users.add(aUser({ failedLoginCount: 4 }));
    expect(await guard.canActivate(loginContext({ username_or_email: 'ada_lovelace', password: 'Wrong1234' }))).toBe(true);
  });

  it('lets an unknown account through, as it would a known one: the sign-in refuses both alike', async () => {
    expect(await guard.canActivate(loginContext({ username_or_email: 'nobody_here', password: 'Wrong1234' }))).toBe(true);
    expect(await guard.canActivate(loginContext({ username_or_email: 'nobody@example.com', password: 'Wrong1234' }))).toBe(true);
  });

  it('lets an account without a password through even if locked (it answers like an unknown one)', async () => {
    unit.users.add(aUser({ passwordHash: null, lockedUntil: new Date(unit.clock.nowMs() + 1000) }));
    expect(await guard.canActivate(loginContext({ username_or_email: 'ada_lovelace', password: 'x' }))).toBe(true);
  });

  it('clears an expired lock and its count, so this attempt starts a new count', async () => {
    const user = unit.users.add(aUser({ failedLoginCount: 5, lockedUntil: new Date(unit.clock.nowMs() + 1000) }));
    unit.clock.advanceSeconds(1);
    expect(await guard.canActivate(loginContext({ username_or_email: 'ada_lovelace', password: 'x' }))).toBe(true);
    expect(unit.users.get(user.id)).toMatchObject({ failedLoginCount: 0, lockedUntil: null });
  });

  it('leaves a malformed sign-in to the validation: 422 comes before 423', async () => {
    unit.users.add(aUser({ lockedUntil: new Date(unit.clock.nowMs() + 1000) }));
    for (const body of [
      undefined,
      { username_or_email: 'ada_lovelace' },
      { username_or_email: 'ada_lovelace', password: 'x', role: 'admin' },
    ]) {
      expect((await thrown(guard.canActivate(loginContext(body)))).code).toBe('validation_failed');
    }
  });
});

describe('POST /auth/login with the lockout guard', () => {
  let unit: AccountsUnit;
  let app: INestApplication;
  let baseUrl: string;

  beforeEach(async () => {
    unit = await createAccountsUnit({ controllers: [AuthController], providers: [LoginLockout] });
    app = unit.moduleRef.createNestApplication({ logger: false });
    app.useGlobalPipes(createValidationPipe());
    app.useGlobalFilters(new HttpExceptionFilter(new RouteTable()));
    await app.listen(0, '127.0.0.1');
    baseUrl = await app.getUrl();
  });
  afterEach(() => app.close());

  const login = async (usernameOrEmail: string, password: string) => {
    const res = await fetch(`${baseUrl}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username_or_email: usernameOrEmail, password }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };

  it('never calls the password hasher for a locked account, even with the right password', async () => {
    const until = new Date(unit.clock.nowMs() + 900_000);
    const user = unit.users.add(aUser({ failedLoginCount: 5, lockedUntil: until }));
    const res = await login('ada_lovelace', PASSWORD);
    expect(res.status).toBe(423);
    expect(res.headers.get('retry-after')).toBe('900');
    expect(res.body).toMatchObject({ code: 'account_locked', locked_until: until.toISOString() });
    expect(unit.hasher.calls).toEqual([]);
    expect(unit.users.get(user.id)?.failedLoginCount).toBe(5);
    expect(unit.audit.entries).toEqual([]);
  });

  it('counts failures in the sign-in: the one that reaches the threshold answers 423, the next is refused unhashed', async () => {
    unit.users.add(aUser());
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await login('ada_lovelace', 'Wrong1234')).status);
    expect(statuses).toEqual([401, 401, 401, 401, 423]);
    expect(unit.hasher.calls).toEqual(['verify', 'verify', 'verify', 'verify', 'verify']);
    expect(unit.audit.entries.map((e) => e.action)).toContain('auth.lockout');

    expect((await login('ada_lovelace', PASSWORD)).status).toBe(423);
    expect(unit.hasher.calls).toHaveLength(5);
  });

  it('spends one (dummy) verification on an unknown account and answers it like a wrong password', async () => {
    unit.users.add(aUser());
    const wrong = await login('ada_lovelace', 'Wrong1234');
    const unknown = await login('nobody_here', 'Wrong1234');
    expect(unit.hasher.calls).toEqual(['verify', 'verifyNothing']);
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    const comparable = (body: Record<string, unknown>) => ({ ...body, request_id: '', timestamp: '', path: '' });
    expect(comparable(unknown.body)).toEqual(comparable(wrong.body));
  });
});
