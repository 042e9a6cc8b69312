import { describe, expect, it } from 'vitest';
import { DEAD_AFTER_MS, KeepAlive, PING_AWAITING_MS, PING_IDLE_MS, retryDelay } from './keep-alive.js';

/** Runs the keep-alive's checks every `step` ms from `from` to `to`, pinging when due; returns when it declared the socket dead. */
function runUntilDead(keepAlive: KeepAlive, from: number, to: number, awaiting: boolean, step = 50): number | null {
  for (let now = from; now <= to; now += step) {
    const due = keepAlive.due(now, awaiting);
    if (due === 'dead') return now;
    if (due === 'ping') keepAlive.pinged(now);
  }
  return null;
}

describe('KeepAlive (fast drop detection)', () => {
  it('pings after 2 s of silence when nothing awaits an answer, and not while the server talks', () => {
    const keepAlive = new KeepAlive();
    keepAlive.start(0);
    expect(keepAlive.due(PING_IDLE_MS - 1, false)).toBeNull();
    keepAlive.heard(1500);
    expect(keepAlive.due(PING_IDLE_MS, false)).toBeNull();
    expect(keepAlive.due(1500 + PING_IDLE_MS, false)).toBe('ping');
  });

  it('pings every second while input awaits its acknowledgement, even while output flows (it measures the round trip)', () => {
    const keepAlive = new KeepAlive();
    keepAlive.start(0);
    expect(keepAlive.due(0, true)).toBe('ping');
    keepAlive.pinged(0);
    keepAlive.heard(300);
    expect(keepAlive.pong(300)).toBe(300);
    expect(keepAlive.rttMs).toBe(300);
    keepAlive.heard(900);
    expect(keepAlive.due(PING_AWAITING_MS - 1, true)).toBeNull();
    expect(keepAlive.due(PING_AWAITING_MS, true)).toBe('ping');
  });

  it('declares a silent socket dead 2.5 s after the last frame once a ping went unanswered: within 3 s idle or typing', () => {
    for (const awaiting of [false, true]) {
      const keepAlive = new KeepAlive();
      keepAlive.start(0);
      // a live link: a ping answered just before the blackhole
      keepAlive.pinged(0);
      keepAlive.heard(20);
      keepAlive.pong(20);
      const blackholeAt = 20;
      const deadAt = runUntilDead(keepAlive, 50, 10_000, awaiting)!;
      expect(deadAt - blackholeAt).toBeGreaterThanOrEqual(DEAD_AFTER_MS);
      expect(deadAt - blackholeAt).toBeLessThanOrEqual(3000);
    }
  });

  it('schedules its next check for the moment a ping or the verdict is due, not on a fixed tick', () => {
    const keepAlive = new KeepAlive();
    keepAlive.start(0);
    expect(keepAlive.nextIn(0, false)).toBe(PING_IDLE_MS);
    expect(keepAlive.nextIn(0, true)).toBe(10); // awaiting, never pinged: ping at once
    keepAlive.pinged(0);
    keepAlive.heard(0);
    keepAlive.pinged(1000); // unanswered
    expect(keepAlive.nextIn(1000, true)).toBe(PING_AWAITING_MS);
    expect(keepAlive.nextIn(1900, true)).toBe(100);
    keepAlive.pinged(2000);
    expect(keepAlive.nextIn(2000, true)).toBe(DEAD_AFTER_MS - 2000);
    expect(keepAlive.due(DEAD_AFTER_MS, true)).toBe('dead');
  });

  it('never declares a socket dead without an unanswered ping (a quiet shell, a throttled background timer)', () => {
    const keepAlive = new KeepAlive();
    keepAlive.start(0);
    expect(keepAlive.due(60_000, false)).toBe('ping'); // a late timer: first ask
    keepAlive.pinged(60_000);
    keepAlive.heard(60_100); // the pong
    keepAlive.pong(60_100);
    expect(keepAlive.due(61_000, false)).toBeNull();
  });

  it('gives a ping at least twice the measured round trip before giving up on a slow link', () => {
    const keepAlive = new KeepAlive();
    keepAlive.start(0);
    keepAlive.pinged(0);
    keepAlive.heard(1200);
    keepAlive.pong(1200); // a 1.2 s round trip
    expect(keepAlive.due(1200 + PING_IDLE_MS, false)).toBe('ping');
    keepAlive.pinged(3200);
    expect(keepAlive.due(1200 + DEAD_AFTER_MS, false)).toBeNull(); // the ping has had less than 2 round trips
    expect(keepAlive.due(3200 + 2400, false)).toBe('dead');
  });

  it('reconnects at once, then after 250 ms, 500 ms, 1 s, 2 s…, at most 5 s while online and 30 s offline', () => {
    const middle = (): number => 0.5;
    expect([0, 1, 2, 3, 4, 5, 6, 12].map((attempt) => retryDelay(attempt, true, middle))).toEqual([
      0, 250, 500, 1000, 2000, 4000, 5000, 5000,
    ]);
    expect(retryDelay(12, false, middle)).toBe(30_000);
    expect(retryDelay(3, true, () => 0)).toBe(800);
    expect(retryDelay(3, true, () => 1)).toBe(1200);
  });
});
