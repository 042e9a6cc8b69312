import { randomUUID } from 'node:crypto';
import type { Provider, Type } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { Test, type TestingModule } from '@nestjs/testing';
import { AuditService, type AuditEntry } from '../../src/audit/audit.service.js';
import { AuthService } from '../../src/auth/auth.service.js';
import { GoogleIdTokenVerifier } from '../../src/auth/google/google-id-token.verifier.js';
import { IdentitiesRepository } from '../../src/auth/identities.repository.js';
import { OneTimeCodesRepository } from '../../src/auth/one-time-codes.repository.js';
import { PasswordHasher } from '../../src/auth/passwords/password-hasher.js';
import { PrincipalCache } from '../../src/auth/principal-cache.js';
import { SessionRevoker } from '../../src/auth/session-revoker.js';
import { Session, SessionsRepository } from '../../src/auth/sessions.repository.js';
import { jwtModuleOptions, TokenService } from '../../src/auth/tokens/token.service.js';
import { Clock } from '../../src/common/clock/clock.js';
import { DomainEvents } from '../../src/common/events/domain-events.js';
import { ReplicaBus, SingleProcessBus } from '../../src/common/events/replica-bus.js';
import { configModule, loadConfiguration } from '../../src/config/configuration.js';
import type { AuthConfig } from '../../src/config/namespaces/auth.config.js';
import { authConfig } from '../../src/config/namespaces/auth.config.js';
import { Mailer } from '../../src/mail/mailer.js';
import { User } from '../../src/users/user.js';
import { UsersRepository } from '../../src/users/users.repository.js';
import { FakeClock } from './fake-clock.js';

/**
 * Fakes for the unit specs of src/auth: the Accounts providers in memory, without a database.
 * (The end-to-end specs in test/accounts/ run the same code against the real one.)
 */

export const UNIT_JWT_SECRET = 'accounts-unit-spec-secret-5d3f1a9c7e2b4d6f8a0c';

/** Names Nest probes on every provider (lifecycle hooks, thenables): a refusing fake has none of them. */
const PROBED = new Set([
  'then',
  'constructor',
  'onModuleInit',
  'onApplicationBootstrap',
  'onModuleDestroy',
  'beforeApplicationShutdown',
  'onApplicationShutdown',
]);

/** A provider the code under test must not use: any method call fails the test, naming the call. */
export function refuseAll(name: string): object {
  return new Proxy(
    {},
    {
      get: (_target, property) => {
        if (typeof property === 'symbol' || PROBED.has(property)) return undefined;
        return () => {
          throw new Error(`unexpected call to ${name}.${property}() in this test`);
        };
      },
    },
  );
}

export function aUser(overrides: Partial<User> = {}): User {
  const now = new Date('2026-11-27T10:00:00.000Z');
  return {
    id: randomUUID().replaceAll('-', '').slice(0, 24),
    username: 'ada_lovelace',
    email: 'ada@example.com',
    passwordHash: '$argon2id$fake',
    fullName: null,
    avatarUrl: null,
    preferredRegion: null,
    isActive: true,
    isVerified: true,
    role: 'user',
    plan: 'free',
    failedLoginCount: 0,
    lockedUntil: null,
    lastLogin: null,
    deletionRequestedAt: null,
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}

/** The user queries sign-in and authentication make, on a map; the lock rules as the repository applies them. */
export class InMemoryUsers {
  readonly byId = new Map<string, User>();

  add(user: User): User {
    this.byId.set(user.id, { ...user });
    return user;
  }

  get(id: string): User | undefined {
    return this.byId.get(id);
  }

  async findById(id: string): Promise<User | null> {
    return this.byId.get(id) ?? null;
  }

  async findByUsernameOrEmail(login: string): Promise<User | null> {
    const key = login.trim().toLowerCase();
    return [...this.byId.values()].find((u) => (login.includes('@') ? u.email : u.username.toLowerCase()) === key) ?? null;
  }

  async clearExpiredLock(id: string, lockedUntil: Date): Promise<User | null> {
    const user = this.byId.get(id);
    if (!user || user.lockedUntil?.getTime() !== lockedUntil.getTime()) return null;
    Object.assign(user, { failedLoginCount: 0, lockedUntil: null });
    return user;
  }

  async recordFailedLogin(id: string, now: Date, threshold: number, lockSeconds: number): Promise<User | null> {
    const user = this.byId.get(id);
    if (!user) return null;
    user.failedLoginCount += 1;
    if (user.failedLoginCount >= threshold && !(user.lockedUntil && user.lockedUntil > now)) {
      user.lockedUntil = new Date(now.getTime() + lockSeconds * 1000);
    }
    return { ...user };
  }

  async recordSuccessfulLogin(id: string, now: Date): Promise<User | null> {
    const user = this.byId.get(id);
    if (!user) return null;
    Object.assign(user, { failedLoginCount: 0, lockedUntil: null, lastLogin: now });
    return { ...user };
  }
}

export class InMemorySessions {
  readonly byId = new Map<string, Session>();

  add(userId: string, overrides: Partial<Session> = {}): Session {
    const now = new Date();
    const session: Session = {
      id: randomUUID(),
      userId,
      currentJtiDigest: 'digest',
      previousJtiDigest: null,
      rotatedAt: null,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: new Date(now.getTime() + 86_400_000),
      revokedAt: null,
      revokeReason: null,
      userAgent: null,
      ip: null,
      ...overrides,
    };
    this.byId.set(session.id, session);
    return session;
  }

  async findById(id: string): Promise<Session | null> {
    return this.byId.get(id) ?? null;
  }
}

/** Counts what reaches argon2; `verify` accepts one password. */
export class CountingHasher extends PasswordHasher {
  readonly calls: string[] = [];

  constructor(private readonly correct = 'Analytical1') {
    super();
  }

  async hash(): Promise<string> {
    this.calls.push('hash');
    return '$argon2id$fake';
  }

  async verify(_hash: string, password: string): Promise<boolean> {
    this.calls.push('verify');
    return password === this.correct;
  }

  async verifyNothing(): Promise<void> {
    this.calls.push('verifyNothing');
  }
}

export class RecordingAudit {
  readonly entries: AuditEntry[] = [];

  async record(entry: AuditEntry): Promise<void> {
    this.entries.push(entry);
  }
}

export interface AccountsUnit {
  moduleRef: TestingModule;
  config: AuthConfig;
  clock: FakeClock;
  users: InMemoryUsers;
  sessions: InMemorySessions;
  hasher: CountingHasher;
  audit: RecordingAudit;
  tokens: TokenService;
}

/**
 * The real AuthService and TokenService (JwtModule with the application's options) on in-memory
 * users and sessions, a hand-moved clock and a counting hasher; every other collaborator refuses
 * to be called. `providers` and `controllers` add what the spec is about.
 */
export async function createAccountsUnit(
  options: { providers?: Provider[]; controllers?: Type[]; env?: Record<string, string> } = {},
): Promise<AccountsUnit> {
  const configuration = loadConfiguration({ NODE_ENV: 'test', JWT_SECRET: UNIT_JWT_SECRET, ...options.env });
  const clock = new FakeClock();
  const users = new InMemoryUsers();
  const sessions = new InMemorySessions();
  const hasher = new CountingHasher();
  const audit = new RecordingAudit();
  const moduleRef = await Test.createTestingModule({
    imports: [
      configModule(configuration),
      JwtModule.registerAsync({ inject: [authConfig.KEY], useFactory: (config: AuthConfig) => jwtModuleOptions(config) }),
    ],
    controllers: options.controllers ?? [],
    providers: [
      AuthService,
      TokenService,
      // Authentication reads through the cache, as in the application (one process: events in memory).
      PrincipalCache,
      DomainEvents,
      { provide: ReplicaBus, useClass: SingleProcessBus },
      { provide: Clock, useValue: clock },
      { provide: UsersRepository, useValue: users },
      { provide: SessionsRepository, useValue: sessions },
      { provide: PasswordHasher, useValue: hasher },
      { provide: AuditService, useValue: audit },
      { provide: SessionRevoker, useValue: refuseAll('SessionRevoker') },
      { provide: OneTimeCodesRepository, useValue: refuseAll('OneTimeCodesRepository') },
      { provide: IdentitiesRepository, useValue: refuseAll('IdentitiesRepository') },
      { provide: GoogleIdTokenVerifier, useValue: refuseAll('GoogleIdTokenVerifier') },
      { provide: Mailer, useValue: refuseAll('Mailer') },
      ...(options.providers ?? []),
    ],
  }).compile();
  return {
    moduleRef,
    config: configuration.auth,
    clock,
    users,
    sessions,
    hasher,
    audit,
    tokens: moduleRef.get(TokenService),
  };
}
