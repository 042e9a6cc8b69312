import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { eventually } from '../../../test/support/eventually.js';
import { fakeTerminalClient } from '../../../test/support/fake-socket.js';
import { testRedisPrefix, testRedisUrl } from '../../../test/support/redis.js';
import type { MetricsService } from '../../common/metrics/metrics.service.js';
import type { EnvironmentSpec, RuntimeProvider } from '../../runtime/runtime.provider.js';
import { TerminalMetrics } from '../terminal-metrics.js';
import { TerminalSession } from '../terminal-session.js';
import type { ClusterParts } from './cluster-parts.js';
import { StreamReader } from './stream-reader.js';
import { ClusterUpstream } from './cluster-upstream.js';
import { decodeInput } from './input-stream.js';
import { minId, outputId, type RawEntry } from './stream-entries.js';
import { TerminalKeys, TerminalScripts } from './terminal-scripts.js';

/** A follower never runs a tmux client: any call to the runtime fails the test. */
const runtime = new Proxy(
  {},
  {
    get: (_target, name) => () => {
      throw new Error(`unexpected runtime call: ${String(name)}`);
    },
  },
) as RuntimeProvider;

/**
 * A follower's reading of the output stream, on a real Redis, with the test as the owner (it holds
 * the lease and writes entries through the fenced script): bytes it missed are skipped, with its
 * session told where the stream goes on, instead of ending the upstream.
 */
describe('ClusterUpstream as a follower, on a real Redis', () => {
  const prefix = testRedisPrefix('cluster-upstream');
  const url = testRedisUrl();
  const KEEP = 60_000;
  let redis: Redis;
  let parts: ClusterParts;
  const opened: ClusterUpstream[] = [];

  beforeAll(async () => {
    redis = new Redis(url, { keyPrefix: prefix, lazyConnect: true });
    await redis.connect();
    parts = {
      redis,
      scripts: new TerminalScripts(redis, prefix),
      leases: new TerminalScripts(redis, prefix),
      keyPrefix: prefix,
      streams: new StreamReader({
        connect: async () => {
          const connection = new Redis(url, { lazyConnect: true });
          await connection.connect();
          return connection;
        },
        redis,
        wakeKey: TerminalKeys.wake('follower'),
        keyPrefix: prefix,
        blockMs: 100,
        outageGraceMs: 10_000,
        count: 512,
      }),
      runtime,
      replica: 'follower',
      owning: () => undefined,
      replayBufferBytes: 64 * 1024,
      timing: {
        leaseMs: KEEP,
        renewMs: 1000,
        keepMs: KEEP,
        inputKeepMs: KEEP,
        outageGraceMs: 10_000,
        ownerWaitMs: 5_000,
      },
    };
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((upstream) => upstream.kill()));
  });

  afterAll(async () => {
    const left = await redis.keys(`${prefix}*`);
    if (left.length > 0) await redis.del(...left.map((key) => key.slice(prefix.length)));
    parts.streams.close();
    redis.disconnect();
  });

  /** The test as the environment's owner: its lease, its session's name, and fenced writes keeping the last `keepBytes`. */
  async function owner(keepBytes = 1 << 20): Promise<{ keys: TerminalKeys; write: (start: number, text: string) => Promise<number> }> {
    const keys = new TerminalKeys(randomBytes(12).toString('hex'));
    const lease = await parts.scripts.acquire(keys, 'owner', KEEP);
    if (!lease) throw new Error('the lease is held');
    await redis.hset(keys.meta, 'name', 'devpocket_test');
    const write = async (start: number, text: string): Promise<number> => {
      const end = start + Buffer.byteLength(text);
      const entry = { id: outputId(start), minId: minId(end - keepBytes), field: 'd', value: text, end };
      if (!(await parts.scripts.write(keys, lease, entry, KEEP))) throw new Error('the write was fenced off');
      return end;
    };
    return { keys, write };
  }

  /** A follower of `keys` whose session records what reaches it, in order: `data:<text>` and `resync:<offset>`. */
  async function follower(keys: TerminalKeys): Promise<{ upstream: ClusterUpstream; events: string[]; ended: () => boolean }> {
    const upstream = await ClusterUpstream.open({ id: keys.environmentId } as EnvironmentSpec, { cols: 80, rows: 24 }, parts, () => false);
    opened.push(upstream);
    const events: string[] = [];
    let ended = false;
    void upstream.exit.then(() => (ended = true));
    upstream.onResync((offset) => events.push(`resync:${offset}`));
    upstream.stream.on('data', (chunk: Buffer) => events.push(`data:${chunk.toString('utf8')}`));
    return { upstream, events, ended: () => ended };
  }

  it('goes on after bytes that were never written (a Redis outage), telling its session where, after what came before', async () => {
    const { keys, write } = await owner();
    await write(1000, 'hello');
    const { upstream, events, ended } = await follower(keys);
    expect(upstream.takeHistory()).toEqual({ base: 1000, chunks: [Buffer.from('hello')] });

    await write(1005, 'wörld');
    // The owner's bytes from 1011 to 2000 never reached the stream.
    await write(2000, 'after');
    await write(2005, 'more');
    await eventually(() => expect(events).toEqual(['data:wörld', 'resync:2000', 'data:after', 'data:more']));
    expect(ended()).toBe(false);
  });

  it('skips a backlog that was trimmed past it while its session did not read, and goes on from the newest entry', async () => {
    const { keys, write } = await owner(8 * 1024);
    let end = await write(1000, 'first');
    const { upstream, events } = await follower(keys);
    await write(end, 'x'.repeat(1000));
    await eventually(() => expect(events).toHaveLength(1));

    // Every client is behind: the session stops reading, and the follower stops once its stream is full.
    upstream.stream.pause();
    const chunk = 'y'.repeat(4096);
    end += 1000;
    while (upstream.stream.readableLength < upstream.stream.readableHighWaterMark) {
      end = await write(end, chunk);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const held = upstream.stream.readableLength;
    // The owner goes on; the stream keeps only its last 8 KiB, far past what the follower read.
    for (let i = 0; i < 16; i += 1) end = await write(end, 'z'.repeat(4096));
    const newestEnd = end;

    upstream.stream.resume();
    await eventually(() => expect(events.at(-1)).toBe(`resync:${newestEnd}`));
    // What it held before the pause reached the session first; none of the backlog after it did.
    const delivered = events
      .slice(1, -1)
      .map((event) => event.replace(/^data:/, ''))
      .join('');
    expect(delivered).toBe(chunk.repeat(Math.ceil(held / chunk.length)));
    await write(end, 'typed');
    await eventually(() => expect(events.at(-1)).toBe('data:typed'));
    expect(events.filter((event) => event.startsWith('resync:'))).toHaveLength(1);
  });

  it("keeps a session's clients through a gap: a reset at the new offset, a repaint asked of the owner, and a redraw for an older resume", async () => {
    const { keys, write } = await owner();
    await write(1000, 'hello');
    const metrics = new TerminalMetrics({ registry: new Registry() } as MetricsService);
    const spec = { id: keys.environmentId } as EnvironmentSpec;
    const session = new TerminalSession(spec, {
      runtime,
      attach: async (at, size) => {
        const upstream = await ClusterUpstream.open(at, size, parts, () => false);
        opened.push(upstream);
        return upstream;
      },
      metrics,
      replayBufferBytes: 1 << 20,
      graceMs: 60_000,
      onInput: () => undefined,
      onClosed: () => undefined,
    });
    const welcome = { type: 'welcome', message: 'hi', environment: { id: spec.id, name: 'n', template: 't', status: 'running' } } as const;
    const [watching, watcher] = fakeTerminalClient(1);
    await session.attach(watching, welcome, 1000);
    expect(watcher.sent.map((m) => m.type)).toEqual(['welcome', 'output']);
    await write(1005, 'world');
    await eventually(() => expect(watcher.sent.at(-1)).toMatchObject({ type: 'output', data: 'world', offset: 1010 }));

    await write(2000, 'after');
    await eventually(() => expect(watcher.sent.at(-1)).toMatchObject({ type: 'output', data: 'after', offset: 2005 }));
    expect(watcher.sent.slice(-2, -1)).toEqual([{ type: 'reset', offset: 2000 }]);
    expect(watching.mode).toBe('live');
    expect(watcher.closedWith).toBeNull();
    expect(session.offset).toBe(2005);
    expect((await metrics.resyncs.get()).values[0]?.value).toBe(1);
    // The repaint is asked of the owner, through the input stream.
    await eventually(async () => {
      const input = (await redis.xrange(keys.input, '-', '+')) as RawEntry[];
      expect(input.map(([, fields]) => decodeInput(fields))).toContainEqual({ type: 'repaint' });
    });

    // Bytes before the gap are gone here: resuming from them redraws; from after it, exactly.
    const [late, lateSocket] = fakeTerminalClient(2);
    await session.attach(late, welcome, 1010);
    expect(lateSocket.sent.map((m) => m.type)).toEqual(['welcome', 'reset']);
    const [exact, exactSocket] = fakeTerminalClient(3);
    await session.attach(exact, welcome, 2000);
    expect(exactSocket.sent.slice(1)).toEqual([{ type: 'output', data: 'after', offset: 2005 }]);
    session.close();
  });
});
