import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { eventually } from '../../../test/support/eventually.js';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/redis.js';
import { type BufferEntry, type ReadStream, StreamReader } from './stream-reader.js';

/** A stream the test reads: what it got, from where it reads, and whether it wants entries. */
class TestStream implements ReadStream {
  readonly got: string[] = [];
  last = '0-0';
  wants = true;
  lostWith: unknown = null;

  constructor(
    readonly key: string,
    readonly name: string,
  ) {}

  after(): string | null {
    return this.wants ? this.last : null;
  }

  entries(list: BufferEntry[]): void {
    for (const [id, fields] of list) {
      this.last = id.toString('utf8');
      this.got.push(fields[1].toString('utf8'));
    }
  }

  lost(error: unknown): void {
    this.lostWith = error;
  }
}

/**
 * The replica's one blocking reader of many streams, on a real Redis. The XREAD blocks for a
 * minute here: whatever a test sees arrive, it sees because the reader was woken, not because the
 * block ran out.
 */
describe('StreamReader, on a real Redis', () => {
  const prefix = testRedisPrefix('stream-reader');
  const url = testRedisUrl();
  const connectionName = `stream-reader-${randomBytes(4).toString('hex')}`;
  let redis: Redis;
  const readers: StreamReader[] = [];

  const reader = (options: { connect?: () => Promise<Redis>; outageGraceMs?: number } = {}): StreamReader => {
    const created = new StreamReader({
      connect:
        options.connect ??
        (async () => {
          const connection = new Redis(url, { lazyConnect: true, connectionName });
          await connection.connect();
          return connection;
        }),
      redis,
      wakeKey: `wake:${randomBytes(4).toString('hex')}`,
      keyPrefix: prefix,
      blockMs: 60_000,
      outageGraceMs: options.outageGraceMs ?? 10_000,
      count: 512,
    });
    readers.push(created);
    return created;
  };
  const stream = (name: string): TestStream => new TestStream(`${prefix}${name}`, name);
  const add = (target: TestStream, ...values: string[]): Promise<unknown> =>
    Promise.all(values.map((value) => redis.xadd(target.name, '*', 'd', value)));

  beforeAll(async () => {
    redis = new Redis(url, { keyPrefix: prefix, lazyConnect: true });
    await redis.connect();
  });

  afterEach(() => {
    for (const created of readers.splice(0)) created.close();
  });

  afterAll(async () => {
    const left = await redis.keys(`${prefix}*`);
    if (left.length > 0) await redis.del(...left.map((key) => key.slice(prefix.length)));
    redis.disconnect();
  });

  it('reads many streams on one connection, each in order, including streams added while it blocks', async () => {
    const streams = Array.from({ length: 20 }, (_, i) => stream(`many:${i}`));
    const shared = reader();
    for (const target of streams.slice(0, 10)) shared.add(target);
    await Promise.all(streams.map((target, i) => add(target, `${i}-a`)));
    await eventually(() => {
      for (const [i, target] of streams.slice(0, 10).entries()) expect(target.got).toEqual([`${i}-a`]);
    });
    // The XREAD blocks now; these join it (a wake-up answers it at once), and only they get entries.
    for (const target of streams.slice(10)) shared.add(target);
    await Promise.all(streams.slice(10).map((target, i) => add(target, `${i + 10}-b`, `${i + 10}-c`)));
    await eventually(() => {
      for (const [i, target] of streams.entries()) expect(target.got).toEqual(i < 10 ? [`${i}-a`] : [`${i}-a`, `${i}-b`, `${i}-c`]);
    });
    await Promise.all(streams.slice(0, 10).map((target, i) => add(target, `${i}-b`)));
    await eventually(() => {
      for (const [i, target] of streams.entries()) expect(target.got.slice(0, 2)).toEqual([`${i}-a`, `${i}-b`]);
    });
    const clients = (await redis.client('LIST')) as string;
    expect(clients.split('\n').filter((line) => line.includes(`name=${connectionName}`))).toHaveLength(1);
  });

  it('reads nothing for a stream that wants nothing, until it is woken, and nothing for one removed', async () => {
    const paused = stream('paused');
    const removed = stream('removed');
    const other = stream('other');
    const shared = reader();
    paused.wants = false;
    for (const target of [paused, removed, other]) shared.add(target);
    shared.remove(removed);
    await add(paused, 'held');
    await add(removed, 'never');
    await add(other, 'read');
    await eventually(() => expect(other.got).toEqual(['read']));
    expect(paused.got).toEqual([]);
    paused.wants = true;
    shared.wake(paused);
    await eventually(() => expect(paused.got).toEqual(['held']));
    await add(other, 'again');
    await eventually(() => expect(other.got).toEqual(['read', 'again']));
    expect(removed.got).toEqual([]);
  });

  it('gives a stream nothing it read after an id the stream went on from meanwhile', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let replied: () => void = () => undefined;
    const firstReply = new Promise<void>((resolve) => (replied = resolve));
    const shared = reader({
      // A real connection whose XREAD replies are held until the test has moved the stream on.
      connect: async () => {
        const connection = new Redis(url, { lazyConnect: true });
        await connection.connect();
        const xread = connection.xreadBuffer.bind(connection);
        connection.xreadBuffer = (async (...args: Parameters<typeof xread>) => {
          const reply = await xread(...args);
          replied();
          await gate;
          return reply;
        }) as typeof connection.xreadBuffer;
        return connection;
      },
    });
    const moved = stream('moved');
    await add(moved, 'one', 'two');
    const [, second] = (await redis.xrange(moved.name, '-', '+')).map(([id]) => id);
    shared.add(moved);
    await firstReply;
    // Read another way (a takeover's catch-up) while the XREAD's reply, both entries, is held.
    moved.last = second;
    release();
    await add(moved, 'three');
    await eventually(() => expect(moved.got).toEqual(['three']));
  });

  it('tells every stream it lost Redis once it could not read for the outage grace, and reads a stream added again', async () => {
    let up = false;
    const shared = reader({
      outageGraceMs: 300,
      connect: async () => {
        if (!up) throw new Error('connect ECONNREFUSED');
        const connection = new Redis(url, { lazyConnect: true });
        await connection.connect();
        return connection;
      },
    });
    const first = stream('lost:1');
    const second = stream('lost:2');
    shared.add(first);
    shared.add(second);
    await eventually(() => {
      expect(String(first.lostWith)).toContain('ECONNREFUSED');
      expect(String(second.lostWith)).toContain('ECONNREFUSED');
    });
    up = true;
    shared.add(first);
    await add(first, 'back');
    await eventually(() => expect(first.got).toEqual(['back']));
    expect(second.got).toEqual([]);
  });
});
