import { Redis } from 'ioredis';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/redis.js';
import { minId, outputId, parseEntry, type RawEntry } from './stream-entries.js';
import { TerminalKeys, TerminalScripts } from './terminal-scripts.js';

describe('TerminalScripts, on a real Redis', () => {
  const prefix = testRedisPrefix('terminal-scripts');
  let redis: Redis;
  let scripts: TerminalScripts;
  const keys = new TerminalKeys('0123456789abcdef01234567');
  const KEEP = 60_000;

  beforeAll(async () => {
    redis = new Redis(testRedisUrl(), { keyPrefix: prefix, lazyConnect: true });
    await redis.connect();
    scripts = new TerminalScripts(redis, prefix);
  });

  afterAll(async () => {
    const left = await redis.keys(`${prefix}*`);
    if (left.length > 0) await redis.del(...left.map((key) => key.slice(prefix.length)));
    redis.disconnect();
  });

  const entry = (start: number, text: string) => ({
    id: outputId(start),
    minId: minId(start - 1024),
    field: 'd',
    value: text,
    end: start + Buffer.byteLength(text),
  });

  it('grants the lease to one replica at a time, each time with a new epoch, and fences off a stale owner', async () => {
    const first = await scripts.acquire(keys, 'replica-a', 200);
    expect(first).toMatch(/^1:replica-a$/);
    expect(await scripts.acquire(keys, 'replica-b', 200)).toBeNull();
    expect(await scripts.write(keys, first!, entry(1000, 'hello'), KEEP)).toBe(true);

    // The owner stalls past its TTL; another replica takes over with the next epoch.
    await redis.pexpire(keys.lease, 1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = await scripts.acquire(keys, 'replica-b', 5_000);
    expect(second).toBe('2:replica-b');
    expect(await scripts.renew(keys, first!, 5_000)).toBe(false);
    expect(await scripts.write(keys, first!, entry(1005, 'stale'), KEEP)).toBe(false);
    expect(await scripts.write(keys, second!, entry(1005, ' world'), KEEP)).toBe(true);

    const stream = (await redis.xrange(keys.output, '-', '+')) as RawEntry[];
    expect(stream.map(parseEntry)).toEqual([
      { kind: 'output', id: '1000-1', start: 1000, data: 'hello' },
      { kind: 'output', id: '1005-1', start: 1005, data: ' world' },
    ]);
    expect(await redis.hget(keys.meta, 'end')).toBe('1011');
    // An id at or below the last one (a writer that missed its successor's bytes) is refused, not an error.
    expect(await scripts.write(keys, second!, entry(1003, 'late'), KEEP)).toBe(false);

    expect(await scripts.release(keys, first!)).toBe(false);
    expect(await scripts.release(keys, second!)).toBe(true);
    expect(await redis.exists(keys.lease)).toBe(0);
  });

  it('counts connections over live replicas only, refusing the one over either limit', async () => {
    const counts = { environment: 'term:{e1}:clients', user: TerminalKeys.user('u1') };
    const limits = { environment: 3, user: 4 };
    await redis.set(TerminalKeys.replica('a'), '1', 'PX', 60_000);
    await redis.set(TerminalKeys.replica('b'), '1', 'PX', 60_000);
    expect(await scripts.admit(counts, 'a', limits, { environment: 1, user: 1 }, KEEP)).toBe('ok');
    expect(await scripts.admit(counts, 'a', limits, { environment: 2, user: 2 }, KEEP)).toBe('ok');
    expect(await scripts.admit(counts, 'b', limits, { environment: 1, user: 1 }, KEEP)).toBe('ok');
    expect(await scripts.admit(counts, 'b', limits, { environment: 2, user: 2 }, KEEP)).toBe('environment');
    // Replica a dies: its heartbeat expires, its connections stop counting.
    await redis.del(TerminalKeys.replica('a'));
    expect(await scripts.admit(counts, 'b', limits, { environment: 2, user: 2 }, KEEP)).toBe('ok');
    expect(await redis.hgetall(counts.environment)).toEqual({ b: '2' });
    const tight = { environment: 10, user: 2 };
    expect(await scripts.admit(counts, 'b', tight, { environment: 3, user: 3 }, KEEP)).toBe('user');
  });
});
