import { performance } from 'node:perf_hooks';

/** Whether a cache may be used right now, and the generation what it stores belongs to (see `DomainEvents.inSync`). */
export interface CacheTrust {
  /** False while invalidations can be missed: nothing is served from the cache or stored in it. */
  inSync: boolean;
  /** Entries stored in another generation are never served. */
  generation: number;
}

export interface LoadingCacheOptions {
  /** Entries kept; the least recently used one goes when a new one would exceed this. */
  maxEntries: number;
  /** How long an entry may be served after its load started; 0 turns the cache off (every get loads). */
  ttlMs: number;
  trust: () => CacheTrust;
  /** Monotonic milliseconds (tests move it by hand). */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  loadedAt: number;
  generation: number;
}

interface Flight<V> {
  promise: Promise<V | null>;
  generation: number;
  /** Set when the key was invalidated while the load ran: its result may predate the change, so it is not stored. */
  invalidated: boolean;
}

/** What a cache did, for metrics and tests. */
export interface CacheCounts {
  hits: number;
  misses: number;
  /** Reads that went to the loader without the cache because it could not be trusted (or is off). */
  bypassed: number;
}

/**
 * A bounded, invalidated read-through cache: `get(key, load)` serves a stored value or loads it
 * (one load per key at a time: concurrent gets share it). Built for values that events invalidate
 * (`invalidate`, `invalidateWhere`), with a TTL as a safety net, so it never serves what it cannot
 * vouch for:
 *
 * - a load that an invalidation overtook is returned to its callers but not stored;
 * - while `trust().inSync` is false, every get loads and nothing is stored;
 * - an entry stored in one trust generation is never served in another (a gap in between may
 *   have hidden an invalidation), nor older than `ttlMs`;
 * - `null` (not found) is never stored.
 */
export class LoadingCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly flights = new Map<K, Flight<V>>();
  private readonly now: () => number;
  readonly counts: CacheCounts = { hits: 0, misses: 0, bypassed: 0 };

  constructor(private readonly options: LoadingCacheOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.entries.size;
  }

  async get(key: K, load: (key: K) => Promise<V | null>): Promise<V | null> {
    const trust = this.options.trust();
    if (this.options.ttlMs <= 0 || !trust.inSync) {
      this.counts.bypassed += 1;
      return load(key);
    }
    const now = this.now();
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      if (entry.generation === trust.generation && now - entry.loadedAt < this.options.ttlMs) {
        // Most recently used goes last: the Map's order is the eviction order.
        this.entries.set(key, entry);
        this.counts.hits += 1;
        return entry.value;
      }
    }
    const flying = this.flights.get(key);
    if (flying && flying.generation === trust.generation) {
      this.counts.hits += 1;
      return flying.promise;
    }
    this.counts.misses += 1;
    const flight: Flight<V> = { generation: trust.generation, invalidated: false, promise: Promise.resolve(null) };
    flight.promise = load(key)
      .then((value) => {
        const after = this.options.trust();
        if (value !== null && !flight.invalidated && after.inSync && after.generation === flight.generation)
          this.store(key, value, now, flight.generation);
        return value;
      })
      .finally(() => {
        if (this.flights.get(key) === flight) this.flights.delete(key);
      });
    this.flights.set(key, flight);
    return flight.promise;
  }

  /** Forgets one key, and keeps a load of it that is running from being stored. */
  invalidate(key: K): void {
    this.entries.delete(key);
    this.abandon(key);
  }

  /**
   * Forgets every entry `matches`; loads running now are not stored either, since what they will
   * return is not known yet.
   */
  invalidateWhere(matches: (value: V, key: K) => boolean): void {
    for (const [key, entry] of this.entries) if (matches(entry.value, key)) this.entries.delete(key);
    for (const key of [...this.flights.keys()]) this.abandon(key);
  }

  clear(): void {
    this.entries.clear();
    for (const key of [...this.flights.keys()]) this.abandon(key);
  }

  private abandon(key: K): void {
    const flight = this.flights.get(key);
    if (!flight) return;
    flight.invalidated = true;
    this.flights.delete(key);
  }

  private store(key: K, value: V, loadedAt: number, generation: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, loadedAt, generation });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}
