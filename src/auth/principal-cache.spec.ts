import { aUser, InMemorySessions, InMemoryUsers } from '../../test/support/accounts-unit.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { ReplicaBus, SingleProcessBus } from '../common/events/replica-bus.js';
import type { AuthCacheConfig } from '../config/namespaces/auth-cache.config.js';
import type { UsersRepository } from '../users/users.repository.js';
import { PrincipalCache } from './principal-cache.js';
import type { SessionsRepository } from './sessions.repository.js';

/** A bus whose trust the test sets: in sync or not, and in which generation. */
class SettableBus extends SingleProcessBus {
  synced = true;
  gen = 0;
  override get inSync(): boolean {
    return this.synced;
  }
  override get generation(): number {
    return this.gen;
  }
}

/** Repositories that count their reads. */
function counting(users: InMemoryUsers, sessions: InMemorySessions) {
  const reads = { users: 0, sessions: 0 };
  const usersRepository = {
    findById: async (id: string) => {
      reads.users += 1;
      return users.findById(id);
    },
  } as unknown as UsersRepository;
  const sessionsRepository = {
    findById: async (id: string) => {
      reads.sessions += 1;
      return sessions.findById(id);
    },
  } as unknown as SessionsRepository;
  return { reads, usersRepository, sessionsRepository };
}

describe('PrincipalCache', () => {
  const config: AuthCacheConfig = { ttlMs: 30_000, maxEntries: 100 };
  let users: InMemoryUsers;
  let sessions: InMemorySessions;
  let events: DomainEvents;
  let bus: SettableBus;
  let cache: PrincipalCache;
  let reads: { users: number; sessions: number };

  const setUp = (bus: ReplicaBus = new SettableBus()): void => {
    users = new InMemoryUsers();
    sessions = new InMemorySessions();
    events = new DomainEvents(bus);
    const repositories = counting(users, sessions);
    reads = repositories.reads;
    cache = new PrincipalCache(config, events, repositories.usersRepository, repositories.sessionsRepository);
    cache.onModuleInit();
  };

  beforeEach(() => {
    bus = new SettableBus();
    setUp(bus);
  });

  it('reads a session and a user once, then serves them, each caller getting its own copy of the user', async () => {
    const user = users.add(aUser());
    const session = sessions.add(user.id);
    for (let i = 0; i < 5; i += 1) {
      expect(await cache.session(session.id)).toEqual({ id: session.id, userId: user.id, revokedAt: null });
      expect(await cache.user(user.id)).toEqual(user);
    }
    expect(reads).toEqual({ users: 1, sessions: 1 });
    const copy = await cache.user(user.id);
    copy!.role = 'admin';
    expect((await cache.user(user.id))!.role).toBe('user');
  });

  it('drops what each event says changed', async () => {
    const user = users.add(aUser());
    const [one, two, kept] = [sessions.add(user.id), sessions.add(user.id), sessions.add(user.id)];
    const warm = async (): Promise<void> => {
      for (const session of [one, two, kept]) await cache.session(session.id);
      await cache.user(user.id);
    };
    await warm();
    expect(reads).toEqual({ users: 1, sessions: 3 });

    // One session ended.
    one.revokedAt = new Date();
    await events.emit('auth.sessions_revoked', { userId: user.id, sessionId: one.id, reason: 'logout' });
    expect((await cache.session(one.id))?.revokedAt).toEqual(one.revokedAt);
    await warm();
    expect(reads).toEqual({ users: 1, sessions: 4 });

    // Every session but one (a password change).
    await events.emit('auth.sessions_revoked', { userId: user.id, exceptSessionId: kept.id, reason: 'password_changed' });
    await warm();
    expect(reads).toEqual({ users: 1, sessions: 6 });

    // The user record changed, was deactivated, is being deleted.
    users.get(user.id)!.plan = 'pro';
    await events.emit('user.changed', { userId: user.id });
    expect((await cache.user(user.id))!.plan).toBe('pro');
    await events.emit('user.deactivated', { userId: user.id });
    await cache.user(user.id);
    expect(reads.users).toBe(3);
    await events.emit('user.deleting', { userId: user.id });
    await warm();
    expect(reads).toEqual({ users: 4, sessions: 9 });
  });

  it('reads the database every time while invalidations cannot be trusted, and forgets what it held before the gap', async () => {
    const user = users.add(aUser());
    const session = sessions.add(user.id);
    await cache.session(session.id);
    bus.synced = false;
    bus.gen = 1;
    session.revokedAt = new Date();
    expect((await cache.session(session.id))?.revokedAt).toEqual(session.revokedAt);
    await cache.session(session.id);
    expect(reads.sessions).toBe(3);
    bus.synced = true;
    bus.gen = 2;
    await cache.session(session.id);
    await cache.session(session.id);
    expect(reads.sessions).toBe(4);
  });

  it('is off with a TTL of 0', async () => {
    const users0 = new InMemoryUsers();
    const repositories = counting(users0, new InMemorySessions());
    const off = new PrincipalCache({ ttlMs: 0, maxEntries: 100 }, events, repositories.usersRepository, repositories.sessionsRepository);
    const user = users0.add(aUser());
    await off.user(user.id);
    await off.user(user.id);
    expect(repositories.reads.users).toBe(2);
  });
});
