import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The Redis keys of one environment's terminal (all under REDIS_KEY_PREFIX, added by the client).
 * The `{…}` hash tag keeps an environment's keys together, should a deployment ever shard them.
 */
export class TerminalKeys {
  readonly lease: string;
  readonly epoch: string;
  readonly output: string;
  readonly input: string;
  readonly meta: string;
  readonly clients: string;
  /** client_id → the last seq written to the terminal (docs/terminal.md, "Low-latency additions"). */
  readonly seqs: string;

  constructor(readonly environmentId: string) {
    const base = `term:{${environmentId}}`;
    this.lease = `${base}:lease`;
    this.epoch = `${base}:epoch`;
    this.output = `${base}:out`;
    this.input = `${base}:in`;
    this.meta = `${base}:meta`;
    this.clients = `${base}:clients`;
    this.seqs = `${base}:seqs`;
  }

  static user(userId: string): string {
    return `term:user:${userId}:clients`;
  }

  static replica(replicaId: string): string {
    return `term:replica:${replicaId}`;
  }

  /** The stream that wakes a replica's blocking XREAD (stream-reader.ts). */
  static wake(replicaId: string): string {
    return `term:wake:${replicaId}`;
  }
}

/** The seqs hash of an environment holds at most this many client_ids (beyond, it starts again). */
export const MAX_SEQS = 10_000;

/**
 * Takes the lease when nobody holds it: a new epoch (INCR, never reused) and the lease
 * `<epoch>:<replica>` with a TTL, in one step. Returns the lease, or nil when it is held.
 */
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('INCR', KEYS[2])
local lease = epoch .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], lease, 'PX', ARGV[2])
return lease`;

/** Extends the lease if it is still this one; 1 or 0. */
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** Gives the lease up if it is still this one. */
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

/**
 * The fenced write of the output stream: only while the lease is still exactly this one (a stale
 * owner, paused past its TTL, gets 0 and never writes). Appends one entry (id = its first byte's
 * offset; `<ms>-*` for an entry of hints only), trims what is older than the replay buffer,
 * records the stream's end offset, and keeps the stream and its metadata for `ARGV[7]` ms after
 * the last write. The entry's fields are ARGV[10…] after the `ARGV[9]` client_id/seq pairs, which
 * are recorded in the seqs hash (at most MAX_SEQS ids: beyond, it starts again), with the
 * environment's other keys' lifetime; `ARGV[8]`, when not empty, is the modes the entry carries,
 * kept in the metadata for replicas that join later.
 * KEYS: lease, output, meta, seqs. ARGV: lease, id, minid, field, value, end, keepMs, modes, n, pairs…, more fields…
 */
const WRITE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[9] or '0')
local entry = {ARGV[4], ARGV[5]}
for i = 10 + 2 * n, #ARGV do entry[#entry + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], ARGV[2], unpack(entry))
redis.call('HSET', KEYS[3], 'end', ARGV[6])
if ARGV[8] and ARGV[8] ~= '' then redis.call('HSET', KEYS[3], 'modes', ARGV[8]) end
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
if n > 0 then
  if redis.call('HLEN', KEYS[4]) > ${MAX_SEQS} then redis.call('DEL', KEYS[4]) end
  for i = 10, 8 + 2 * n, 2 do
    local known = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0')
    if tonumber(ARGV[i + 1]) > known then redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
  end
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
return 1`;

/**
 * Admits one more terminal connection if the environment's and the user's counts over every live
 * replica allow it. Each replica writes its own absolute counts (a field per replica), so a count
 * that failed to update is right again at the next write; fields of replicas whose heartbeat key
 * expired are dropped here. KEYS: environment counts, user counts. ARGV: replica, key prefix,
 * environment limit, user limit, this replica's environment count with the new one, its user
 * count with the new one, keepMs. Returns 'ok', 'environment' or 'user'.
 */
const ADMIT = `
local function others(key)
  local total = 0
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local replica = fields[i]
    if replica ~= ARGV[1] then
      if redis.call('EXISTS', ARGV[2] .. 'term:replica:' .. replica) == 1 then
        total = total + tonumber(fields[i + 1])
      else
        redis.call('HDEL', key, replica)
      end
    end
  end
  return total
end
if others(KEYS[1]) + tonumber(ARGV[5]) > tonumber(ARGV[3]) then return 'environment' end
if others(KEYS[2]) + tonumber(ARGV[6]) > tonumber(ARGV[4]) then return 'user' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return 'ok'`;

/** What one output-stream write carries besides its bytes (docs/terminal.md, "Low-latency additions"). */
export interface EntryHints {
  /** client_id → last seq written, for the seqs hash. */
  seqs?: [string, number][];
  /** The modes (JSON) the entry carries, for the metadata. */
  modes?: string;
  /** More fields of the entry (field, value, …). */
  fields?: string[];
}

/** One Lua script, sent once and then called by its SHA (EVALSHA; EVAL again after a Redis restart flushed it). */
class Script {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

export type Admission = 'ok' | 'environment' | 'user';

/** The terminal's atomic steps in Redis, on a connection whose keys are prefixed (the shared one, or the leases'). */
export class TerminalScripts {
  private readonly acquireScript = new Script(ACQUIRE);
  private readonly renewScript = new Script(RENEW);
  private readonly releaseScript = new Script(RELEASE);
  private readonly writeScript = new Script(WRITE);
  private readonly admitScript = new Script(ADMIT);

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
  ) {}

  /** The new lease (`<epoch>:<replica>`), or null when another replica holds it. */
  async acquire(keys: TerminalKeys, replica: string, ttlMs: number): Promise<string | null> {
    const lease = await this.acquireScript.run(this.redis, [keys.lease, keys.epoch], [replica, ttlMs]);
    return typeof lease === 'string' ? lease : null;
  }

  async renew(keys: TerminalKeys, lease: string, ttlMs: number): Promise<boolean> {
    return (await this.renewScript.run(this.redis, [keys.lease], [lease, ttlMs])) === 1;
  }

  /** True while any replica holds the environment's lease. */
  async held(keys: TerminalKeys): Promise<boolean> {
    return (await this.redis.exists(keys.lease)) === 1;
  }

  async release(keys: TerminalKeys, lease: string): Promise<boolean> {
    return (await this.releaseScript.run(this.redis, [keys.lease], [lease])) === 1;
  }

  /** Appends one output entry under the fence; false when the lease is no longer this one. */
  async write(
    keys: TerminalKeys,
    lease: string,
    entry: { id: string; minId: string; field: string; value: Buffer | string; end: number },
    keepMs: number,
    hints: EntryHints = {},
  ): Promise<boolean> {
    const seqs = hints.seqs ?? [];
    const args = [
      ...[lease, entry.id, entry.minId, entry.field, entry.value, entry.end, keepMs, hints.modes ?? '', seqs.length],
      ...seqs.flat(),
      ...(hints.fields ?? []),
    ];
    try {
      return (await this.writeScript.run(this.redis, [keys.lease, keys.output, keys.meta, keys.seqs], args)) === 1;
    } catch (error) {
      // An id at or below the stream's last one: someone else wrote after us, so the lease is not ours.
      if (error instanceof Error && /equal or smaller/.test(error.message)) return false;
      throw error;
    }
  }

  async admit(
    keys: { environment: string; user: string },
    replica: string,
    limits: { environment: number; user: number },
    counts: { environment: number; user: number },
    keepMs: number,
  ): Promise<Admission> {
    const verdict = await this.admitScript.run(
      this.redis,
      [keys.environment, keys.user],
      [replica, this.keyPrefix, limits.environment, limits.user, counts.environment, counts.user, keepMs],
    );
    return verdict === 'environment' || verdict === 'user' ? verdict : 'ok';
  }
}
