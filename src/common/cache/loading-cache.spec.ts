import { type CacheTrust, LoadingCache } from './loading-cache.js';

/** A loader that counts its calls and answers from a map, optionally held until released. */
class Source {
  readonly values = new Map<string, string | null>();
  calls = 0;
  private held: (() => void)[] = [];
  hold = false;

  load = async (key: string): Promise<string | null> => {
    this.calls += 1;
    const value = this.values.get(key) ?? null;
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    return value;
  };

  release(): void {
    for (const resolve of this.held.splice(0)) resolve();
  }
}

describe('LoadingCache', () => {
  let now: number;
  let trust: CacheTrust;
  let source: Source;
  const cache = (options: { maxEntries?: number; ttlMs?: number } = {}): LoadingCache<string, string> =>
    new LoadingCache<string, string>({
      maxEntries: options.maxEntries ?? 100,
      ttlMs: options.ttlMs ?? 30_000,
      trust: () => trust,
      now: () => now,
    });

  beforeEach(() => {
    now = 1_000;
    trust = { inSync: true, generation: 1 };
    source = new Source();
    source.values.set('a', 'A1');
    source.values.set('b', 'B1');
  });

  it('serves a loaded value without loading again, until its TTL has passed', async () => {
    const c = cache({ ttlMs: 30_000 });
    expect(await c.get('a', source.load)).toBe('A1');
    source.values.set('a', 'A2');
    now += 29_999;
    expect(await c.get('a', source.load)).toBe('A1');
    expect(source.calls).toBe(1);
    now += 1;
    expect(await c.get('a', source.load)).toBe('A2');
    expect(source.calls).toBe(2);
    expect(c.counts).toEqual({ hits: 1, misses: 2, bypassed: 0 });
  });

  it('shares one load between concurrent gets of a key', async () => {
    const c = cache();
    source.hold = true;
    const gets = [c.get('a', source.load), c.get('a', source.load), c.get('a', source.load)];
    await Promise.resolve();
    source.release();
    expect(await Promise.all(gets)).toEqual(['A1', 'A1', 'A1']);
    expect(source.calls).toBe(1);
  });

  it('returns a load that an invalidation overtook, but does not keep it', async () => {
    const c = cache();
    source.hold = true;
    const first = c.get('a', source.load);
    await Promise.resolve();
    // The record changes and the change is announced while the read is on its way.
    source.values.set('a', 'A2');
    c.invalidate('a');
    // A get after the invalidation does not join the overtaken load.
    const second = c.get('a', source.load);
    await Promise.resolve();
    source.release();
    expect(await first).toBe('A1');
    expect(await second).toBe('A2');
    source.hold = false;
    expect(await c.get('a', source.load)).toBe('A2');
    expect(source.calls).toBe(2);
  });

  it('invalidateWhere forgets the matching entries and keeps running loads from being stored', async () => {
    const c = cache();
    await c.get('a', source.load);
    await c.get('b', source.load);
    c.invalidateWhere((value) => value === 'A1');
    expect(c.size).toBe(1);
    source.hold = true;
    source.values.set('c', 'C1');
    const running = c.get('c', source.load);
    await Promise.resolve();
    c.invalidateWhere(() => false);
    source.release();
    expect(await running).toBe('C1');
    expect(c.size).toBe(1);
    source.hold = false;
    await c.get('b', source.load);
    expect(source.calls).toBe(3);
  });

  it('keeps at most maxEntries, dropping the least recently used', async () => {
    const c = cache({ maxEntries: 2 });
    source.values.set('c', 'C1');
    await c.get('a', source.load);
    await c.get('b', source.load);
    await c.get('a', source.load); // a is now more recent than b
    await c.get('c', source.load); // evicts b
    expect(c.size).toBe(2);
    const calls = source.calls;
    await c.get('a', source.load);
    await c.get('c', source.load);
    expect(source.calls).toBe(calls);
    await c.get('b', source.load);
    expect(source.calls).toBe(calls + 1);
  });

  it('neither serves nor stores while invalidations cannot be trusted, nor serves what an earlier generation stored', async () => {
    const c = cache();
    await c.get('a', source.load);
    trust = { inSync: false, generation: 2 };
    source.values.set('a', 'A2');
    expect(await c.get('a', source.load)).toBe('A2');
    expect(await c.get('a', source.load)).toBe('A2');
    expect(source.calls).toBe(3);
    expect(c.counts.bypassed).toBe(2);
    // Back in sync, in a later generation: what was stored before the gap is not served.
    trust = { inSync: true, generation: 3 };
    source.values.set('a', 'A3');
    expect(await c.get('a', source.load)).toBe('A3');
    expect(await c.get('a', source.load)).toBe('A3');
    expect(source.calls).toBe(4);
  });

  it('does not store a load that started before a gap and ended after it', async () => {
    const c = cache();
    source.hold = true;
    const straddling = c.get('a', source.load);
    await Promise.resolve();
    trust = { inSync: false, generation: 2 };
    trust = { inSync: true, generation: 3 };
    source.release();
    expect(await straddling).toBe('A1');
    source.hold = false;
    await c.get('a', source.load);
    expect(source.calls).toBe(2);
  });

  it('never stores "not found", and loads every time with a TTL of 0', async () => {
    const c = cache();
    expect(await c.get('missing', source.load)).toBeNull();
    expect(await c.get('missing', source.load)).toBeNull();
    expect(source.calls).toBe(2);
    const off = cache({ ttlMs: 0 });
    await off.get('a', source.load);
    await off.get('a', source.load);
    expect(source.calls).toBe(4);
    expect(off.size).toBe(0);
  });

  it('clear() forgets everything', async () => {
    const c = cache();
    await c.get('a', source.load);
    c.clear();
    await c.get('a', source.load);
    expect(source.calls).toBe(2);
  });
});
