import { randomInt, randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { AuditAction, AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock/clock.js';
import { AppError } from '../common/errors/app-error.js';
import { authConfig } from '../config/namespaces/auth.config.js';
import { Mailer } from '../mail/mailer.js';
import { DuplicateUserError, UsersRepository } from '../users/users.repository.js';
import { normalizeEmail, User } from '../users/user.js';
import type { Principal } from '../common/http/principal.js';
import type { RequestContext } from '../common/http/request-context.js';
import { AccountsError, AuthError, AuthErrorReason } from './auth.errors.js';
import { GoogleIdTokenVerifier } from './google/google-id-token.verifier.js';
import { IdentitiesRepository } from './identities.repository.js';
import { OneTimeCodesRepository } from './one-time-codes.repository.js';
import { accountLocked } from './lockout/login-lockout.js';
import { PasswordHasher } from './passwords/password-hasher.js';
import { PrincipalCache } from './principal-cache.js';
import { SessionRevoker } from './session-revoker.js';
import { SessionsRepository } from './sessions.repository.js';
import { AccessClaims, TokenPair, TokenService } from './tokens/token.service.js';
import { usernameCandidates } from './username-from-email.js';

export const INCORRECT_CREDENTIALS = 'Incorrect username/email or password';

/** A sign-in's outcome: the new token pair and the signed-in user as stored after the sign-in. */
export interface SignedIn {
  tokens: TokenPair;
  user: User;
}

const VERIFICATION_TTL_MS = 24 * 3600_000;
const RESET_TTL_MS = 3600_000;
const MAX_CODE_ATTEMPTS = 5;
/** Verification mails: at most one a minute and five an hour per account. */
const RESEND_MIN_INTERVAL_MS = 60_000;
const RESEND_WINDOW_MS = 3600_000;
const RESEND_MAX_IN_WINDOW = 5;

/**
 * Accounts and sessions: sign-up, sign-in (password and Google), refresh rotation with reuse
 * detection, lockout, email verification and password reset.
 */
@Injectable()
export class AuthService {
  private readonly logger = new Logger('Auth');

  constructor(
    @Inject(authConfig.KEY) private readonly config: ConfigType<typeof authConfig>,
    private readonly clock: Clock,
    private readonly users: UsersRepository,
    private readonly sessions: SessionsRepository,
    private readonly revoker: SessionRevoker,
    private readonly codes: OneTimeCodesRepository,
    private readonly identities: IdentitiesRepository,
    private readonly hasher: PasswordHasher,
    private readonly tokens: TokenService,
    private readonly google: GoogleIdTokenVerifier,
    private readonly mailer: Mailer,
    private readonly audit: AuditService,
    private readonly principals: PrincipalCache,
  ) {}

  /** An audit entry for something a user did to their own account. */
  private auditSelf(action: AuditAction, user: User, ctx: RequestContext, details?: Record<string, unknown>): Promise<void> {
    return this.audit.record({
      action,
      actorId: user.id,
      actorUsername: user.username,
      targetId: user.id,
      target: 'user',
      ip: ctx.ip,
      details,
    });
  }

  // ---- sessions and tokens -------------------------------------------------------------------

  private async startSession(user: User, ctx: RequestContext): Promise<SignedIn> {
    const now = this.clock.now();
    const sessionId = randomUUID();
    const pair = await this.tokens.issuePair(user.id, sessionId);
    await this.sessions.create({
      id: sessionId,
      userId: user.id,
      jtiDigest: this.tokens.digest(pair.refreshJti),
      now,
      expiresAt: this.refreshExpiry(now),
      userAgent: ctx.userAgent,
      ip: ctx.ip,
    });
    return { tokens: pair, user };
  }

  private refreshExpiry(now: Date): Date {
    return new Date(now.getTime() + this.config.refreshTokenTtlSeconds * 1000);
  }

  /**
   * Resolves a raw access token to its user and session; every failure is a 401 (an AuthError).
   * For code that holds a token itself (the WebSocket gateways); HTTP requests go through the
   * Passport strategy (`jwt/jwt.strategy.ts`), which ends in `principalFor` too.
   */
  async authenticate(accessToken: string): Promise<Principal> {
    return this.principalFor(await this.tokens.verifyAccess(accessToken));
  }

  /**
   * The check every authenticated request makes once the token itself is verified: the session
   * must be live and the user's, the user must exist and be active. The user returned is the one
   * stored, so role, plan and active flag are current: both come from `PrincipalCache`, which
   * every change invalidates on every replica (and which reads the database whenever it cannot
   * be sure of that).
   */
  async principalFor(claims: AccessClaims): Promise<Principal> {
    const [user, session] = await Promise.all([this.principals.user(claims.sub), this.principals.session(claims.sid)]);
    if (!session || session.revokedAt || session.userId !== claims.sub) {
      throw new AuthError(AuthErrorReason.SessionRevoked, 'The session has ended; sign in again');
    }
    if (!user || !user.isActive) throw new AuthError(AuthErrorReason.UserInactive, 'The account is disabled or no longer exists');
    return { user, sessionId: session.id };
  }

  async refresh(refreshToken: string, ctx: RequestContext): Promise<SignedIn> {
    const claims = await this.tokens.verifyRefresh(refreshToken);
    const now = this.clock.now();
    const presented = this.tokens.digest(claims.jti);
    const next = await this.tokens.issuePair(claims.sub, claims.sid);
    const nextDigest = this.tokens.digest(next.refreshJti);

    let session = await this.sessions.rotate(claims.sid, presented, nextDigest, now, this.refreshExpiry(now));
    if (!session) {
      const existing = await this.sessions.findById(claims.sid);
      if (!existing || existing.userId !== claims.sub || existing.revokedAt || existing.expiresAt <= now) {
        throw new AuthError(AuthErrorReason.SessionRevoked, 'The session has ended; sign in again');
      }
      const withinGrace =
        existing.previousJtiDigest === presented &&
        existing.rotatedAt !== null &&
        now.getTime() - existing.rotatedAt.getTime() <= this.config.refreshReuseGraceSeconds * 1000;
      if (withinGrace) {
        session = await this.sessions.rotateFromPrevious(
          claims.sid,
          presented,
          existing.currentJtiDigest,
          nextDigest,
          now,
          this.refreshExpiry(now),
        );
      }
      if (!session) {
        await this.revoker.revoke(claims.sub, claims.sid, 'refresh_token_reuse');
        await this.audit.record({
          action: 'auth.refresh_reuse_detected',
          actorId: claims.sub,
          targetId: claims.sid,
          target: 'session',
          ip: ctx.ip,
        });
        this.logger.warn(`Refresh token reuse detected; session ${claims.sid} of user ${claims.sub} revoked`);
        throw new AuthError(AuthErrorReason.RefreshReuse, 'This refresh token was already used; the session has been ended for safety');
      }
    }
    const user = await this.users.findById(claims.sub);
    if (!user || !user.isActive) throw new AuthError(AuthErrorReason.UserInactive, 'The account is disabled or no longer exists');
    return { tokens: next, user };
  }

  async logout(principal: Principal, ctx: RequestContext): Promise<void> {
    await this.revoker.revoke(principal.user.id, principal.sessionId, 'logout');
    await this.audit.record({
      action: 'auth.logout',
      actorId: principal.user.id,
      actorUsername: principal.user.username,
      targetId: principal.sessionId,
      target: 'session',
      ip: ctx.ip,
    });
  }

  // ---- registration and sign-in ---------------------------------------------------------------

  async register(
    input: { username: string; email: string; password: string; fullName?: string | null },
    ctx: RequestContext,
  ): Promise<SignedIn> {
    const taken = await this.users.existing(input.username, input.email);
    if (taken.username) throw this.duplicate('username');
    if (taken.email) throw this.duplicate('email');
    const passwordHash = await this.hasher.hash(input.password);
    let user: User;
    try {
      user = await this.users.create({ username: input.username, email: input.email, passwordHash, fullName: input.fullName ?? null });
    } catch (error) {
      if (error instanceof DuplicateUserError) throw this.duplicate(error.field);
      throw error;
    }
    await this.auditSelf('auth.register', user, ctx);
    await this.sendVerificationCode(user, false);
    return this.startSession(user, ctx);
  }

  private duplicate(field: 'username' | 'email'): AppError {
    const detail =
      field === 'username' ? 'An account with this username already exists' : 'An account with this email address already exists';
    return new AppError(AccountsError.AccountExists, detail, { errors: [{ field, message: detail, code: 'already_exists' }] });
  }

  /**
   * Password sign-in. A locked account never gets here: `LoginLockoutGuard` refuses it on the route
   * (and clears an expired lock) before this runs. This counts the failures.
   */
  async login(login: string, password: string, ctx: RequestContext): Promise<SignedIn> {
    const user = await this.users.findByUsernameOrEmail(login);
    if (!user || !user.passwordHash) {
      await this.hasher.verifyNothing(password);
      await this.audit.record({
        action: 'auth.login_failed',
        target: 'user',
        ip: ctx.ip,
        details: { reason: user ? 'no_password' : 'unknown_account' },
        targetId: user?.id ?? null,
      });
      throw new AppError(AccountsError.InvalidCredentials, INCORRECT_CREDENTIALS);
    }
    const now = this.clock.now();
    const matches = await this.hasher.verify(user.passwordHash, password);
    if (!matches) {
      const counted = await this.users.recordFailedLogin(user.id, now, this.config.lockoutThreshold, this.config.lockoutSeconds);
      await this.audit.record({
        action: 'auth.login_failed',
        targetId: user.id,
        target: 'user',
        ip: ctx.ip,
        details: { reason: 'wrong_password', failures: counted?.failedLoginCount },
      });
      if (counted?.lockedUntil && counted.lockedUntil > now) {
        if (counted.failedLoginCount === this.config.lockoutThreshold) {
          await this.audit.record({
            action: 'auth.lockout',
            targetId: user.id,
            target: 'user',
            ip: ctx.ip,
            details: { until: counted.lockedUntil.toISOString() },
          });
        }
        throw accountLocked(counted.lockedUntil, now);
      }
      throw new AppError(AccountsError.InvalidCredentials, INCORRECT_CREDENTIALS);
    }
    if (!user.isActive) throw new AppError(AccountsError.AccountDisabled, 'This account is disabled');
    const signedIn = (await this.users.recordSuccessfulLogin(user.id, now)) ?? user;
    await this.auditSelf('auth.login', signedIn, ctx);
    return this.startSession(signedIn, ctx);
  }

  /**
   * Signs in (or up) with a Google ID token: the mobile app's, or the one the console's browser
   * flow received from Google's token endpoint (`audiences`: its web client id).
   */
  async signInWithGoogle(idToken: string, ctx: RequestContext, audiences?: readonly string[]): Promise<SignedIn> {
    const identity = await this.google.verify(idToken, audiences);
    if (!identity.email || !identity.emailVerified) {
      throw new AppError(AccountsError.GoogleEmailUnverified, 'The Google account has no verified email address');
    }
    let user: User | null = null;
    const linkedUserId = await this.identities.findUserId('google', identity.subject);
    if (linkedUserId) user = await this.users.findById(linkedUserId);
    if (!user) {
      user = await this.users.findByEmail(identity.email);
      if (user) {
        await this.identities.link('google', identity.subject, user.id, identity.email);
        if (!user.isVerified) user = await this.takeOverUnverifiedAccount(user);
        await this.auditSelf('auth.google_linked', user, ctx);
      } else {
        user = await this.createGoogleUser(identity.email, identity.name, identity.picture);
        const owner = await this.identities.link('google', identity.subject, user.id, identity.email);
        if (owner !== user.id) {
          // A parallel sign-in with the same Google account won: use its user, drop ours.
          await this.users.delete(user.id);
          user = await this.users.findById(owner);
        }
        if (user) await this.auditSelf('auth.register', user, ctx, { provider: 'google' });
      }
    }
    if (!user) throw new AppError(AccountsError.GoogleAccountGone, 'The linked account no longer exists');
    if (!user.isActive) throw new AppError(AccountsError.AccountDisabled, 'This account is disabled');
    const signedIn = (await this.users.recordSuccessfulLogin(user.id, this.clock.now())) ?? user;
    await this.auditSelf('auth.google_login', signedIn, ctx);
    return this.startSession(signedIn, ctx);
  }

  /**
   * Google proved this person owns the address; whoever registered it without verifying it did
   * not. Their password and sessions go (no pre-registered account survives as a back door), and
   * the address counts as verified. The owner can set a password with forgot-password.
   */
  private async takeOverUnverifiedAccount(user: User): Promise<User> {
    await this.revoker.revokeAll(user.id, 'email_claimed_by_google');
    await this.users.clearPassword(user.id);
    return (await this.users.markVerified(user.id)) ?? user;
  }

  private async createGoogleUser(email: string, name: string | null, picture: string | null): Promise<User> {
    for (const username of usernameCandidates(email)) {
      try {
        return await this.users.create({ username, email, passwordHash: null, fullName: name, avatarUrl: picture, isVerified: true });
      } catch (error) {
        if (!(error instanceof DuplicateUserError)) throw error;
        if (error.field === 'email') {
          const existing = await this.users.findByEmail(email);
          if (existing) return existing;
        }
      }
    }
    throw new AppError(
      AccountsError.GoogleUsernameUnavailable,
      'Could not choose a username for this Google account; register with a username instead',
    );
  }

  // ---- passwords ---------------------------------------------------------------------------

  async changePassword(principal: Principal, currentPassword: string, newPassword: string, ctx: RequestContext): Promise<void> {
    const user = await this.users.findById(principal.user.id);
    if (!user) throw new AuthError(AuthErrorReason.UserInactive, 'The account no longer exists');
    if (!user.passwordHash || !(await this.hasher.verify(user.passwordHash, currentPassword))) {
      throw new AppError(AccountsError.CurrentPasswordIncorrect, 'The current password is incorrect', {
        errors: [{ field: 'current_password', message: 'The current password is incorrect', code: 'incorrect' }],
      });
    }
    await this.users.setPasswordHash(user.id, await this.hasher.hash(newPassword));
    const revoked = await this.revoker.revokeAll(user.id, 'password_changed', principal.sessionId);
    await this.auditSelf('auth.password_changed', user, ctx, { other_sessions_revoked: revoked });
  }

  async forgotPassword(email: string, ctx: RequestContext): Promise<void> {
    const user = await this.users.findByEmail(normalizeEmail(email));
    if (!user || !user.isActive) return;
    const token = await this.issueCode(user, 'password_reset', () => TokenService.randomSecret(), RESET_TTL_MS, true);
    if (token === null) return;
    await this.audit.record({ action: 'auth.password_reset_requested', targetId: user.id, target: 'user', ip: ctx.ip });
    await this.deliver(user.email, 'Reset your DevPocket password', [
      `Hello ${user.fullName ?? user.username},`,
      '',
      'Someone (hopefully you) asked to reset the password of your DevPocket account.',
      `Within an hour, paste this reset token into the app: ${token}`,
      '',
      'If it was not you, ignore this mail: your password stays as it is.',
    ]);
  }

  async resetPassword(token: string, newPassword: string, ctx: RequestContext): Promise<void> {
    const invalid = new AppError(AccountsError.ResetTokenInvalid, 'The reset token is invalid, expired or already used; ask for a new one');
    const now = this.clock.now();
    const code = await this.codes.findByDigest('password_reset', this.tokens.digest(token));
    if (!code || code.consumedAt || code.expiresAt <= now) throw invalid;
    if (!(await this.codes.consume('password_reset', code.userId, code.digest, now))) throw invalid;
    const user = await this.users.setPasswordHash(code.userId, await this.hasher.hash(newPassword));
    if (!user) throw invalid;
    await this.revoker.revokeAll(user.id, 'password_reset');
    await this.auditSelf('auth.password_reset', user, ctx);
  }

  // ---- email verification ----------------------------------------------------------------------

  /** Mails a fresh 6-digit code. With `throttle`, refuses (429) when the account asked too often. */
  async sendVerificationCode(user: User, throttle: boolean): Promise<void> {
    if (user.isVerified) {
      if (throttle) throw new AppError(AccountsError.AlreadyVerified, 'The email address is already verified');
      return;
    }
    const sixDigits = (): string => String(randomInt(0, 1_000_000)).padStart(6, '0');
    const code = await this.issueCode(user, 'email_verification', sixDigits, VERIFICATION_TTL_MS, throttle);
    if (code === null) return;
    await this.deliver(user.email, 'Your DevPocket verification code', [
      `Hello ${user.fullName ?? user.username},`,
      '',
      `Your DevPocket verification code is ${code}`,
      '',
      'Type it in the app to confirm your email address. It is valid for 24 hours.',
    ]);
  }

  /**
   * Stores a new code from `newSecret`, never the same as the one it replaces (so a resend always
   * invalidates the old code), applying the per-account send throttle (one a minute, five an hour).
   * Returns the code, or null when throttled silently (forgot-password never reveals anything).
   */
  private async issueCode(
    user: User,
    purpose: 'email_verification' | 'password_reset',
    newSecret: () => string,
    ttlMs: number,
    throttle: boolean,
  ): Promise<string | null> {
    const now = this.clock.now();
    const previous = await this.codes.find(purpose, user.id);
    let sendsInWindow = 1;
    let windowStartedAt = now;
    if (previous && now.getTime() - previous.windowStartedAt.getTime() < RESEND_WINDOW_MS) {
      sendsInWindow = previous.sendsInWindow + 1;
      windowStartedAt = previous.windowStartedAt;
      const tooSoon = now.getTime() - previous.sentAt.getTime() < RESEND_MIN_INTERVAL_MS;
      if (throttle && (tooSoon || sendsInWindow > RESEND_MAX_IN_WINDOW)) {
        if (purpose === 'password_reset') return null;
        const retryAt = tooSoon ? previous.sentAt.getTime() + RESEND_MIN_INTERVAL_MS : windowStartedAt.getTime() + RESEND_WINDOW_MS;
        const seconds = Math.max(1, Math.ceil((retryAt - now.getTime()) / 1000));
        throw new AppError(AccountsError.CodeSentRecently, `A code was sent recently; try again in ${seconds} s`, {
          headers: { 'Retry-After': String(seconds) },
        });
      }
    }
    let secret = newSecret();
    while (previous && this.tokens.digest(secret) === previous.digest) secret = newSecret();
    await this.codes.put({
      userId: user.id,
      purpose,
      digest: this.tokens.digest(secret),
      expiresAt: new Date(now.getTime() + ttlMs),
      sentAt: now,
      sendsInWindow,
      windowStartedAt,
    });
    return secret;
  }

  async verifyEmail(principal: Principal, code: string, ctx: RequestContext): Promise<User> {
    const user = principal.user;
    if (user.isVerified) return user;
    const now = this.clock.now();
    const stored = await this.codes.find('email_verification', user.id);
    const needNew = 'request a new code';
    if (!stored || stored.consumedAt)
      throw new AppError(AccountsError.VerificationCodeMissing, `There is no pending verification code; ${needNew}`);
    if (stored.expiresAt <= now) throw new AppError(AccountsError.VerificationCodeExpired, `The verification code has expired; ${needNew}`);
    if (stored.failedAttempts >= MAX_CODE_ATTEMPTS)
      throw new AppError(AccountsError.VerificationCodeLocked, `Too many wrong codes; ${needNew}`);
    if (stored.digest !== this.tokens.digest(code)) {
      const failures = await this.codes.recordFailure('email_verification', user.id);
      const left = MAX_CODE_ATTEMPTS - failures;
      throw new AppError(
        left > 0 ? AccountsError.VerificationCodeIncorrect : AccountsError.VerificationCodeLocked,
        left > 0 ? `The verification code is incorrect; ${left} attempt(s) left` : `Too many wrong codes; ${needNew}`,
      );
    }
    if (!(await this.codes.consume('email_verification', user.id, stored.digest, now))) {
      throw new AppError(AccountsError.VerificationCodeUsed, `The verification code was already used; ${needNew}`);
    }
    const verified = (await this.users.markVerified(user.id)) ?? user;
    await this.auditSelf('auth.email_verified', user, ctx);
    return verified;
  }

  private async deliver(to: string, subject: string, lines: string[]): Promise<void> {
    try {
      await this.mailer.send({ to, subject, text: `${lines.join('\n')}\n` });
    } catch (error) {
      this.logger.error(
        `Could not send "${subject.replace(/\d{6}/, '******')}" to a user: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}
