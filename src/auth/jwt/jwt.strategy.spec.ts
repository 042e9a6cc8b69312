import { generateKeyPairSync } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import type { Request } from 'express';
import { SignJWT } from 'jose';
import { aUser, createAccountsUnit, UNIT_JWT_SECRET, type AccountsUnit } from '../../../test/support/accounts-unit.js';
import type { Principal } from '../../common/http/principal.js';
import { AuthError } from '../auth.errors.js';
import { AuthService } from '../auth.service.js';
import { TOKEN_ISSUER } from '../tokens/token.service.js';
import { JwtAuthGuard } from './jwt-auth.guard.js';
import { JwtStrategy } from './jwt.strategy.js';

/** A protected route: no @Public(), no @AdminOnly(). */
class ProtectedController {
  route(): void {}
}

/** An HTTP request as Express hands it to the guard, with this Authorization header. */
function httpRequest(authorization?: string): Request {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  return { headers, header: (name: string) => headers[name.toLowerCase()] } as unknown as Request;
}

function httpContext(req: Request): ExecutionContextHost {
  return new ExecutionContextHost([req, {}, () => undefined], ProtectedController, ProtectedController.prototype.route);
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; reason: unknown; detail: string; headers: unknown }> {
  const error: unknown = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof AuthError)) throw new Error(`expected an AuthError, got ${String(error)}`);
  return { code: error.code, reason: error.options.extra?.reason, detail: error.detail, headers: error.options.headers };
}

/** A JWT shaped like ours, with nothing after the payload: `alg: none`. */
function unsigned(payload: Record<string, unknown>): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(payload)}.`;
}

describe('JwtStrategy (passport-jwt), as the global guard runs it', () => {
  let unit: AccountsUnit;
  let guard: JwtAuthGuard;
  let auth: AuthService;

  beforeEach(async () => {
    unit = await createAccountsUnit({ providers: [JwtStrategy, JwtAuthGuard] });
    guard = unit.moduleRef.get(JwtAuthGuard);
    auth = unit.moduleRef.get(AuthService);
  });
  afterEach(() => unit.moduleRef.close());

  /** A user with a live session and the token pair of that session. */
  async function signedIn(overrides: Parameters<typeof aUser>[0] = {}) {
    const user = unit.users.add(aUser(overrides));
    const session = unit.sessions.add(user.id);
    const pair = await unit.tokens.issuePair(user.id, session.id);
    return { user, session, pair };
  }

  /** Claims of a well-formed access token of `user`'s session, signed by whoever the caller picks. */
  function claimsOf(user: { id: string }, sessionId: string): Record<string, unknown> {
    const iat = Math.floor(unit.clock.nowMs() / 1000);
    return { typ: 'access', sub: user.id, sid: sessionId, jti: 'a-jti', iss: TOKEN_ISSUER, iat, exp: iat + 900 };
  }

  /** The same token through both entry points: the HTTP guard (Passport) and AuthService.authenticate (WebSockets). */
  async function refusedBoth(token: string) {
    const viaGuard = await refusal(guard.canActivate(httpContext(httpRequest(`Bearer ${token}`))));
    const viaAuthenticate = await refusal(auth.authenticate(token));
    expect(viaAuthenticate).toEqual(viaGuard);
    expect(viaGuard.headers).toEqual({ 'WWW-Authenticate': 'Bearer' });
    expect(viaGuard.reason).toBe(viaGuard.code);
    return viaGuard;
  }

  it('turns a valid access token into the principal: the user as loaded now, and the session', async () => {
    const { user, session, pair } = await signedIn({ role: 'admin' });
    const req = httpRequest(`Bearer ${pair.accessToken}`);
    expect(await guard.canActivate(httpContext(req))).toBe(true);
    expect(req.principal).toEqual<Principal>({ user: unit.users.get(user.id)!, sessionId: session.id });
    expect(await auth.authenticate(pair.accessToken)).toEqual(req.principal);
  });

  it('accepts the scheme in any case and tokens issued before the move to Passport (jose, HS256)', async () => {
    const { user, session } = await signedIn();
    // What the previous TokenService (jose's SignJWT) produced: same header, claims and key.
    const iat = Math.floor(unit.clock.nowMs() / 1000);
    const legacy = await new SignJWT({ typ: 'access', sid: session.id })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(user.id)
      .setJti('legacy-jti')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 900)
      .sign(new TextEncoder().encode(UNIT_JWT_SECRET));
    const req = httpRequest(`bearer ${legacy}`);
    expect(await guard.canActivate(httpContext(req))).toBe(true);
    expect(req.principal?.sessionId).toBe(session.id);
  });

  it('refuses a refresh token: wrong_token_type', async () => {
    const { pair } = await signedIn();
    expect(await refusedBoth(pair.refreshToken)).toMatchObject({ code: 'wrong_token_type', detail: 'This is not an access token' });
  });

  it('refuses an expired token against the server clock, to the second: token_expired', async () => {
    const { pair } = await signedIn();
    unit.clock.advanceSeconds(899);
    expect(await auth.authenticate(pair.accessToken)).toBeDefined();
    unit.clock.advanceSeconds(1);
    expect(await refusedBoth(pair.accessToken)).toMatchObject({ code: 'token_expired', detail: 'The token has expired' });
  });

  it('refuses an expired refresh token as expired, not as the wrong type (expiry is checked first)', async () => {
    const { pair } = await signedIn();
    unit.clock.advanceSeconds(31 * 86_400);
    expect((await refusedBoth(pair.refreshToken)).code).toBe('token_expired');
  });

  it.each([
    [
      'signed with another secret',
      async (claims: Record<string, unknown>) =>
        new JwtService({ secret: 'another-secret-of-sufficient-length-0123456789' }).signAsync(claims),
    ],
    [
      'HS512 with the right secret',
      async (claims: Record<string, unknown>) => new JwtService({ secret: UNIT_JWT_SECRET }).signAsync(claims, { algorithm: 'HS512' }),
    ],
    [
      'RS256',
      async (claims: Record<string, unknown>) => {
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        return new JwtService({ privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) }).signAsync(claims, {
          algorithm: 'RS256',
        });
      },
    ],
    ['alg none', async (claims: Record<string, unknown>) => unsigned(claims)],
    [
      'from another issuer',
      async (claims: Record<string, unknown>) => new JwtService({ secret: UNIT_JWT_SECRET }).signAsync({ ...claims, iss: 'someone-else' }),
    ],
    [
      'tampered with',
      async (claims: Record<string, unknown>) => {
        const [header, , signature] = (await new JwtService({ secret: UNIT_JWT_SECRET }).signAsync(claims)).split('.');
        return `${header}.${Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')}.${signature}`;
      },
    ],
    ['not a JWT', async () => 'not.a.jwt'],
    ['garbage', async () => 'garbage'],
  ])('refuses a token %s: invalid_token "The token is invalid"', async (_label, make) => {
    const { user, session } = await signedIn();
    const token = await make(claimsOf(user, session.id));
    expect(await refusedBoth(token)).toMatchObject({ code: 'invalid_token', detail: 'The token is invalid' });
  });

  it.each(['sub', 'sid', 'jti', 'exp'])('refuses a token without %s: invalid_token "missing required claims"', async (claim) => {
    const { user, session } = await signedIn();
    const claims = claimsOf(user, session.id);
    delete claims[claim];
    const token = await new JwtService({ secret: UNIT_JWT_SECRET }).signAsync(claims);
    expect(await refusedBoth(token)).toMatchObject({ code: 'invalid_token', detail: 'The token is missing required claims' });
  });

  it('refuses a token of a revoked, unknown or foreign session: session_revoked', async () => {
    const { user, session, pair } = await signedIn();
    const other = unit.users.add(aUser({ username: 'other', email: 'other@example.com' }));
    const foreign = unit.sessions.add(other.id);
    const detail = 'The session has ended; sign in again';

    session.revokedAt = unit.clock.now();
    expect(await refusedBoth(pair.accessToken)).toMatchObject({ code: 'session_revoked', detail });
    expect(await refusedBoth((await unit.tokens.issuePair(user.id, 'no-such-session')).accessToken)).toMatchObject({
      code: 'session_revoked',
    });
    expect(await refusedBoth((await unit.tokens.issuePair(user.id, foreign.id)).accessToken)).toMatchObject({ code: 'session_revoked' });
  });

  it('refuses a token of an inactive or deleted user: user_inactive', async () => {
    const { user, pair } = await signedIn();
    const detail = 'The account is disabled or no longer exists';
    unit.users.get(user.id)!.isActive = false;
    expect(await refusedBoth(pair.accessToken)).toMatchObject({ code: 'user_inactive', detail });
    unit.users.byId.delete(user.id);
    expect(await refusedBoth(pair.accessToken)).toMatchObject({ code: 'user_inactive', detail });
  });

  it.each([
    ['no Authorization header', undefined],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['an empty bearer value', 'Bearer '],
    ['two values', 'Bearer a b'],
  ])("answers %s with missing_token, never Passport's own 401", async (_label, header) => {
    expect(await refusal(guard.canActivate(httpContext(httpRequest(header))))).toEqual({
      code: 'missing_token',
      reason: 'missing_token',
      detail: 'Authentication required: send an access token as `Authorization: Bearer <token>`',
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  });

  it('validate() maps verified claims to the principal with the same check as AuthService.authenticate', async () => {
    const { user, session } = await signedIn();
    const strategy = unit.moduleRef.get(JwtStrategy);
    const principal = await strategy.validate(claimsOf(user, session.id));
    expect(principal).toEqual({ user: unit.users.get(user.id), sessionId: session.id });
    expect((await refusal(strategy.validate({ ...claimsOf(user, session.id), typ: 'refresh' }))).code).toBe('wrong_token_type');
  });
});
