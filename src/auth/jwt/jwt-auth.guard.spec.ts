import { Controller, Get, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { Request } from 'express';
import { aUser, createAccountsUnit, type AccountsUnit } from '../../../test/support/accounts-unit.js';
import { HttpExceptionFilter } from '../../common/errors/http-exception.filter.js';
import { RouteTable } from '../../common/errors/route-table.js';
import { CurrentPrincipal, type Principal } from '../../common/http/principal.js';
import { AdminOnly, Public } from '../../common/http/route-access.js';
import { JwtAuthGuard } from './jwt-auth.guard.js';
import { JwtStrategy } from './jwt.strategy.js';

@Controller('probe')
class GuardProbeController {
  @Public()
  @Get('open')
  open(): { open: true } {
    return { open: true };
  }

  @Get('me')
  me(@CurrentPrincipal() principal: Principal): { id: string; session: string } {
    return { id: principal.user.id, session: principal.sessionId };
  }

  @AdminOnly()
  @Get('admin')
  admin(): { admin: true } {
    return { admin: true };
  }
}

@AdminOnly()
@Controller('admin-area')
class AdminAreaController {
  @Get()
  list(): { admin: true } {
    return { admin: true };
  }
}

interface Served {
  unit: AccountsUnit;
  app: INestApplication;
  baseUrl: string;
}

/** The guard as the application registers it (APP_GUARD), behind a real HTTP server and the error filter. */
async function serve(env: Record<string, string> = {}): Promise<Served> {
  const unit = await createAccountsUnit({
    env,
    controllers: [GuardProbeController, AdminAreaController],
    // The APP_GUARD instance serves the HTTP requests; the plain one is for calling it directly.
    providers: [JwtStrategy, JwtAuthGuard, { provide: APP_GUARD, useClass: JwtAuthGuard }],
  });
  const app = unit.moduleRef.createNestApplication({ logger: false });
  app.useGlobalFilters(new HttpExceptionFilter(new RouteTable()));
  await app.listen(0, '127.0.0.1');
  return { unit, app, baseUrl: await app.getUrl() };
}

async function get(
  served: Served,
  path: string,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${served.baseUrl}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

async function signIn(
  unit: AccountsUnit,
  overrides: Parameters<typeof aUser>[0] = {},
): Promise<{ id: string; session: string; token: string }> {
  const user = unit.users.add(aUser(overrides));
  const session = unit.sessions.add(user.id);
  return { id: user.id, session: session.id, token: (await unit.tokens.issuePair(user.id, session.id)).accessToken };
}

describe('JwtAuthGuard (global, on AuthGuard("jwt"))', () => {
  let served: Served;
  beforeAll(async () => (served = await serve()));
  afterAll(() => served.app.close());

  it('lets @Public() routes through without a token, and ignores a bad one there', async () => {
    expect((await get(served, '/probe/open')).status).toBe(200);
    expect((await get(served, '/probe/open', 'garbage')).body).toEqual({ open: true });
  });

  it('answers a protected route without a token with our 401: code, reason and WWW-Authenticate, not "Unauthorized"', async () => {
    const res = await get(served, '/probe/me');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.body).toMatchObject({
      code: 'missing_token',
      reason: 'missing_token',
      detail: 'Authentication required: send an access token as `Authorization: Bearer <token>`',
      path: '/probe/me',
    });
    const bad = await get(served, '/probe/me', 'not.a.jwt');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe('Bearer');
    expect(bad.body).toMatchObject({ code: 'invalid_token', reason: 'invalid_token', detail: 'The token is invalid' });
  });

  it('sets req.principal for @CurrentPrincipal(): the user and the session of the token', async () => {
    const caller = await signIn(served.unit);
    const res = await get(served, '/probe/me', caller.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: caller.id, session: caller.session });
  });

  it('answers @AdminOnly() routes (on a handler or a controller) with 403 admin_required for a user, 401 without a token', async () => {
    const user = await signIn(served.unit);
    const admin = await signIn(served.unit, { role: 'admin', username: 'grace', email: 'grace@example.com' });
    for (const path of ['/probe/admin', '/admin-area']) {
      const refused = await get(served, path, user.token);
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'admin_required', detail: 'This action requires the admin role' });
      expect(refused.body).not.toHaveProperty('reason');
      expect(refused.headers.get('www-authenticate')).toBeNull();
      expect((await get(served, path, admin.token)).status).toBe(200);
      expect((await get(served, path)).body).toMatchObject({ code: 'missing_token' });
    }
  });

  it('reads the role from the database on each request: a demotion applies at once', async () => {
    const admin = await signIn(served.unit, { role: 'admin', username: 'alan', email: 'alan@example.com' });
    expect((await get(served, '/probe/admin', admin.token)).status).toBe(200);
    served.unit.users.get(admin.id)!.role = 'user';
    expect((await get(served, '/probe/admin', admin.token)).status).toBe(403);
  });

  it('lets an error that is not a refusal through as itself (a database outage is not a 401)', async () => {
    const caller = await signIn(served.unit);
    const outage = new Error('database unreachable');
    const findById = served.unit.users.findById.bind(served.unit.users);
    served.unit.users.findById = () => Promise.reject(outage);
    try {
      const guard = served.app.get(JwtAuthGuard);
      const req = { headers: {}, header: () => `Bearer ${caller.token}` } as unknown as Request;
      const context = new ExecutionContextHost([req, {}, () => undefined], GuardProbeController, GuardProbeController.prototype.me);
      await expect(guard.canActivate(context)).rejects.toBe(outage);
      // Unknown errors answer 500; the filter maps the driver's real outage errors to 503.
      expect((await get(served, '/probe/me', caller.token)).status).toBe(500);
    } finally {
      served.unit.users.findById = findById;
    }
  });

  it('does not act outside HTTP (the WebSocket gateways authenticate themselves)', async () => {
    const guard = served.app.get(JwtAuthGuard);
    const context = new ExecutionContextHost([{}, {}, {}], GuardProbeController, GuardProbeController.prototype.me);
    context.setType('ws');
    expect(await guard.canActivate(context)).toBe(true);
  });

  it('keeps applications in one process apart: each verifies with its own strategy (secret, users, sessions)', async () => {
    const other = await serve({ JWT_SECRET: 'another-application-secret-9e8d7c6b5a4f3e2d1c0b' });
    try {
      const [mine, theirs] = await Promise.all([signIn(served.unit), signIn(other.unit)]);
      // Interleaved: Passport's registry holds one "jwt" strategy at a time for the whole process.
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? get(served, '/probe/me', mine.token) : get(other, '/probe/me', theirs.token))),
      );
      expect(answers.map((a) => a.body.id)).toEqual([mine.id, theirs.id, mine.id, theirs.id, mine.id, theirs.id]);
      expect((await get(other, '/probe/me', mine.token)).body).toMatchObject({ code: 'invalid_token' });
      expect((await get(served, '/probe/me', theirs.token)).body).toMatchObject({ code: 'invalid_token' });
    } finally {
      await other.app.close();
    }
  });
});
