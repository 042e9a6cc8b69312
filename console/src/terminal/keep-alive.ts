/**
 * Fast drop detection (docs/console.md#the-connection, docs/terminal.md keep-alive): a phone that
 * changed networks, or a link that went silent, keeps a dead socket "open" for minutes; the
 * console notices within about 3 s.
 *
 * - Pings every PING_AWAITING_MS while something awaits an answer (input not acknowledged yet),
 *   which also measures the round trip while typing; otherwise after PING_IDLE_MS of silence.
 * - Declares the socket dead when a ping is unanswered and no frame at all has come for DEAD_AFTER_MS,
 *   giving the ping at least twice the measured round trip (and PONG_MIN_MS) to come back.
 * - Reconnection delays: at once, then 250 ms, 500 ms, 1 s, 2 s, 4 s, capped at 5 s while the
 *   device is online (30 s when it says it is offline: its `online` event reconnects at once).
 *
 * Pure: the caller passes the time (`Date.now()`), calls `due` when `nextIn` says, and again
 * (to reschedule) when something awaits an answer that did not before.
 */

export const PING_AWAITING_MS = 1000;
export const PING_IDLE_MS = 2000;
export const DEAD_AFTER_MS = 2500;
export const PONG_MIN_MS = 500;
/** The shortest wait between two checks. */
const MIN_CHECK_MS = 10;
/** Pings in flight at most (their pongs measure the round trip, oldest first). */
const MAX_IN_FLIGHT = 8;

const FIRST_RETRY_MS = 250;
const MAX_RETRY_ONLINE_MS = 5000;
const MAX_RETRY_OFFLINE_MS = 30_000;

/** The delay before reconnection attempt `attempt` (0 for the first after a drop). */
export function retryDelay(attempt: number, online: boolean, random: () => number = Math.random): number {
  if (attempt <= 0) return 0;
  const cap = online ? MAX_RETRY_ONLINE_MS : MAX_RETRY_OFFLINE_MS;
  const base = Math.min(cap, FIRST_RETRY_MS * 2 ** Math.min(attempt - 1, 16));
  return Math.min(cap, Math.round(base * (0.8 + 0.4 * random())));
}

export class KeepAlive {
  private lastHeard = 0;
  private lastPing = Number.NEGATIVE_INFINITY;
  /** When each ping still unanswered went out, oldest first. */
  private inFlight: number[] = [];
  private smoothed: number | null = null;

  /** The smoothed round trip of pings (ms), null before the first pong. */
  get rttMs(): number | null {
    return this.smoothed;
  }

  /** A new socket is up (its welcome came). */
  start(now: number): void {
    this.lastHeard = now;
    this.lastPing = Number.NEGATIVE_INFINITY;
    this.inFlight = [];
  }

  /** Any frame from the server. */
  heard(now: number): void {
    this.lastHeard = now;
  }

  /** A pong: the round trip of the oldest ping in flight (null when none was). */
  pong(now: number): number | null {
    const sentAt = this.inFlight.shift();
    if (sentAt === undefined) return null;
    const rtt = Math.max(0, now - sentAt);
    this.smoothed = this.smoothed === null ? rtt : Math.round(this.smoothed + 0.25 * (rtt - this.smoothed));
    return rtt;
  }

  /** A ping went out. */
  pinged(now: number): void {
    this.lastPing = now;
    this.inFlight.push(now);
    if (this.inFlight.length > MAX_IN_FLIGHT) this.inFlight.shift();
  }

  /** What to do now: ping, give the socket up, or nothing. */
  due(now: number, awaiting: boolean): 'ping' | 'dead' | null {
    const deadAt = this.deadAt();
    if (deadAt !== null && now >= deadAt) return 'dead';
    const pingAt = this.pingAt(awaiting);
    return pingAt !== null && now >= pingAt ? 'ping' : null;
  }

  /** How long until `due` may have something to do (ms). */
  nextIn(now: number, awaiting: boolean): number {
    const times = [this.deadAt(), this.pingAt(awaiting)].filter((time): time is number => time !== null);
    const next = times.length > 0 ? Math.min(...times) : now + PING_AWAITING_MS;
    return Math.max(MIN_CHECK_MS, next - now);
  }

  /**
   * When the socket counts as dead: only a ping left unanswered counts (a quiet shell is normal),
   * the first one sent since the last frame.
   */
  private deadAt(): number | null {
    const probe = this.inFlight.find((sentAt) => sentAt >= this.lastHeard);
    if (probe === undefined) return null;
    const grace = Math.max(PONG_MIN_MS, 2 * (this.smoothed ?? 0));
    return Math.max(this.lastHeard + DEAD_AFTER_MS, probe + grace);
  }

  private pingAt(awaiting: boolean): number | null {
    if (this.inFlight.length >= MAX_IN_FLIGHT) return null;
    if (awaiting) return this.lastPing + PING_AWAITING_MS;
    return Math.max(this.lastHeard, this.lastPing) + PING_IDLE_MS;
  }
}
