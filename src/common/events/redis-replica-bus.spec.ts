import { Logger } from '@nestjs/common';
import { eventually } from '../../../test/support/eventually.js';
import { startRedis, testRedisPrefix, testRedisUrl, type TestRedis } from '../../../test/support/redis.js';
import { RedisSharedState } from '../shared-state/redis-shared-state.js';
import { DomainEvents } from './domain-events.js';
import { RedisReplicaBus } from './replica-bus.js';

/** One replica's event plumbing on a real Redis: its connections, its bus, its DomainEvents. */
interface Replica {
  shared: RedisSharedState;
  bus: RedisReplicaBus;
  events: DomainEvents;
  heard: string[];
}

async function replica(redisUrl: string, keyPrefix: string): Promise<Replica> {
  const shared = new RedisSharedState({ redisUrl, keyPrefix }, { heartbeatMs: 200 });
  const bus = new RedisReplicaBus(shared);
  const events = new DomainEvents(bus);
  const heard: string[] = [];
  events.on('user.changed', ({ userId }) => void heard.push(userId), { everyReplica: true });
  await shared.onModuleInit();
  return { shared, bus, events, heard };
}

async function closeAll(replicas: Replica[]): Promise<void> {
  for (const { shared, bus } of replicas.splice(0)) {
    await bus.beforeApplicationShutdown();
    shared.onApplicationShutdown();
  }
}

describe('RedisReplicaBus, on a real Redis', () => {
  const replicas: Replica[] = [];
  const join = async (url: string, prefix: string): Promise<Replica> => {
    const created = await replica(url, prefix);
    replicas.push(created);
    return created;
  };

  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']));
  afterEach(() => closeAll(replicas));

  it('brings an event to every other replica of the installation, once, and never back to its emitter', async () => {
    const prefix = testRedisPrefix('bus');
    const [a, b, c] = [await join(testRedisUrl(), prefix), await join(testRedisUrl(), prefix), await join(testRedisUrl(), prefix)];
    const elsewhere = await join(testRedisUrl(), testRedisPrefix('bus-other'));
    expect([a, b, c].every(({ events }) => events.inSync)).toBe(true);

    await a.events.emit('user.changed', { userId: 'u1' });
    // The emitter ran its handler once, in emit itself.
    expect(a.heard).toEqual(['u1']);
    await eventually(
      () => {
        expect(b.heard).toEqual(['u1']);
        expect(c.heard).toEqual(['u1']);
      },
      5_000,
      10,
    );
    await c.events.emit('user.changed', { userId: 'u2' });
    await eventually(() => expect(a.heard).toEqual(['u1', 'u2']), 5_000, 10);
    expect(b.heard).toEqual(['u1', 'u2']);
    expect(c.heard).toEqual(['u1', 'u2']);
    // Another installation (another key prefix) on the same Redis hears nothing of it.
    expect(elsewhere.heard).toEqual([]);
  });

  it('ignores what is not an event of this version on its channel', async () => {
    const prefix = testRedisPrefix('bus-garbage');
    const a = await join(testRedisUrl(), prefix);
    const b = await join(testRedisUrl(), prefix);
    await a.shared.publish(a.shared.channel('events'), 'not json');
    await a.shared.publish(
      a.shared.channel('events'),
      JSON.stringify({ v: 99, origin: 'x', name: 'user.changed', payload: { userId: 'x' } }),
    );
    await a.events.emit('user.changed', { userId: 'real' });
    await eventually(() => expect(b.heard).toEqual(['real']), 5_000, 10);
  });

  describe('while Redis is away', () => {
    let redis: TestRedis;
    beforeEach(async () => (redis = await startRedis()));
    afterEach(async () => {
      await closeAll(replicas);
      await redis.close();
    });

    it('is out of sync, keeps what it emits for later, and is in sync again (with a resync) once Redis is back', async () => {
      const prefix = testRedisPrefix('bus-outage');
      const a = await join(redis.url, prefix);
      const b = await join(redis.url, prefix);
      const resyncs: number[] = [];
      b.events.onResync(() => resyncs.push(b.events.syncGeneration));
      const generation = b.events.syncGeneration;

      await redis.stop();
      await eventually(
        () => {
          expect(a.events.inSync).toBe(false);
          expect(b.events.inSync).toBe(false);
        },
        5_000,
        20,
      );
      // Emitting does not fail: the handlers here run, the event waits for Redis.
      await a.events.emit('user.changed', { userId: 'during-outage' });
      await a.events.emit('environment.phase_changed', {
        environmentId: 'e1',
        userId: 'u1',
        phase: 'stopped',
        status: 'stopped',
        statusMessage: null,
      });
      expect(a.heard).toEqual(['during-outage']);
      expect(a.bus.pending).toBe(2);

      await redis.start();
      await eventually(
        () => {
          expect(a.events.inSync).toBe(true);
          expect(b.events.inSync).toBe(true);
        },
        10_000,
        20,
      );
      expect(b.events.syncGeneration).toBeGreaterThan(generation);
      expect(resyncs.length).toBeGreaterThanOrEqual(1);
      // The event waited in a's outbox; b hears it once both are back (unless b subscribed after a flushed:
      // then the resync re-check covers it, which is what resyncs above is for).
      await eventually(() => expect(a.bus.pending).toBe(0), 10_000, 20);
      await a.events.emit('user.changed', { userId: 'after' });
      await eventually(() => expect(b.heard).toContain('after'), 5_000, 10);
    });

    it('drops an event older than its limit instead of sending it late', async () => {
      const prefix = testRedisPrefix('bus-late');
      const a = await join(redis.url, prefix);
      await redis.stop();
      await eventually(() => expect(a.shared.available).toBe(false), 5_000, 20);
      await a.bus.publish('environment.phase_changed', {}, { maxAgeMs: 0 });
      await a.bus.publish('user.changed', { userId: 'kept' });
      expect(a.bus.pending).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await redis.start();
      await eventually(() => expect(a.bus.pending).toBe(0), 10_000, 20);
    });
  });
});
