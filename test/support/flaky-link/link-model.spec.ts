import { describe, expect, it } from 'vitest';

import { applySettings, DEFAULT_LINK, LinkDirection, StreamSchedule, TokenBucket, type LinkSettings } from './link-model.js';
import { deriveSeed, mulberry32, randomAt } from './prng.js';

/** A direction configured from settings over the defaults. */
function direction(settings: LinkSettings, name: 'up' | 'down' = 'up'): LinkDirection {
  const link = new LinkDirection(name);
  link.configure(applySettings(DEFAULT_LINK, settings));
  return link;
}

/** Offers chunks of the given sizes at the given times (virtual ms) and returns each packet's timing. */
function run(schedule: StreamSchedule, offers: Array<{ at: number; bytes: number }>) {
  return offers.flatMap(({ at, bytes }) =>
    schedule.split(bytes).map((packet) => ({ ...packet, offeredAt: at, ...schedule.time(at, packet) })),
  );
}

const spaced = (count: number, gapMs: number, bytes: number) => Array.from({ length: count }, (_, i) => ({ at: i * gapMs, bytes }));

describe('prng', () => {
  it('gives the same numbers for the same seed, in [0, 1), and other numbers for another seed', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    const c = mulberry32(8);
    const first = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(first);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(first);
    expect(first.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = first.reduce((sum, x) => sum + x, 0) / first.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
  });

  it('reaches any position of a stream directly', () => {
    const stream = mulberry32(123);
    const numbers = Array.from({ length: 50 }, () => stream());
    expect(numbers.map((_, i) => randomAt(123, i))).toEqual(numbers);
  });

  it('derives distinct sub-seeds from labels', () => {
    const seeds = new Set([deriveSeed(1, 0, 0), deriveSeed(1, 0, 1), deriveSeed(1, 1, 0), deriveSeed(2, 0, 0)]);
    expect(seeds.size).toBe(4);
    expect(deriveSeed(1, 3, 1)).toBe(deriveSeed(1, 3, 1));
  });
});

describe('link settings', () => {
  it('changes only what is given', () => {
    const first = applySettings(DEFAULT_LINK, { up: { delayMs: 125, jitterMs: 25 }, down: { bytesPerSecond: 125_000 } });
    const second = applySettings(first, { up: { loss: 0.01 }, windowBytes: 1000 });
    expect(second.up).toEqual({ ...DEFAULT_LINK.up, delayMs: 125, jitterMs: 25, loss: 0.01 });
    expect(second.down).toEqual({ ...DEFAULT_LINK.down, bytesPerSecond: 125_000 });
    expect(second.windowBytes).toBe(1000);
    expect(second.segmentBytes).toBe(DEFAULT_LINK.segmentBytes);
  });

  it('refuses values out of range', () => {
    expect(() => applySettings(DEFAULT_LINK, { up: { loss: 1.5 } })).toThrow(/up.loss/);
    expect(() => applySettings(DEFAULT_LINK, { down: { delayMs: -1 } })).toThrow(/down.delayMs/);
    expect(() => applySettings(DEFAULT_LINK, { segmentBytes: 0 })).toThrow(/segmentBytes/);
    expect(() => applySettings(DEFAULT_LINK, { up: { jitterMs: Number.NaN } })).toThrow(/up.jitterMs/);
  });
});

describe('delay and jitter', () => {
  it('delivers each packet exactly one delay later without jitter', () => {
    const timings = run(new StreamSchedule(direction({ up: { delayMs: 125 } }), 1, 0), spaced(20, 7, 10));
    expect(timings.map((t) => t.deliverAt - t.offeredAt)).toEqual(Array(20).fill(125));
  });

  it('spreads the delay over delay ± jitter and never reorders', () => {
    const schedule = new StreamSchedule(direction({ up: { delayMs: 125, jitterMs: 25 } }), 42, 0);
    // Keystrokes far apart, a packet each: each packet's own delay shows.
    const apart = run(schedule, spaced(400, 1000, 1)).map((t) => t.deliverAt - t.offeredAt);
    expect(Math.min(...apart)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...apart)).toBeLessThanOrEqual(150);
    expect(Math.min(...apart)).toBeLessThan(105);
    expect(Math.max(...apart)).toBeGreaterThan(145);
    // Close together (a packet every ms, less than the jitter): jitter would reorder them, order is kept.
    const close = run(new StreamSchedule(direction({ up: { delayMs: 125, jitterMs: 25 } }), 42, 0), spaced(400, 1, 1400));
    const times = close.map((t) => t.deliverAt);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(close.some((t) => t.deliverAt - t.offeredAt > 125 + 25 - 1)).toBe(true); // held behind a slower one
    expect(close.every((t) => t.deliverAt - t.offeredAt >= 100)).toBe(true);
  });

  it('cuts streams at segment boundaries', () => {
    const schedule = new StreamSchedule(direction({ segmentBytes: 100 }), 1, 0);
    expect(schedule.split(150)).toEqual([
      { offset: 0, length: 100 },
      { offset: 100, length: 50 },
    ]);
    expect(schedule.split(120)).toEqual([
      { offset: 150, length: 50 },
      { offset: 200, length: 70 },
    ]);
  });
});

describe('bandwidth', () => {
  it('paces a burst at the rate of the token bucket', () => {
    // 1 Mbit/s, segments of 1400 bytes: one every 11.2 ms once the bucket (one segment deep) is empty.
    const schedule = new StreamSchedule(direction({ up: { bytesPerSecond: 125_000 } }), 1, 0);
    const timings = run(schedule, [{ at: 0, bytes: 100 * 1400 }]);
    expect(timings).toHaveLength(100);
    timings.forEach((t, i) => expect(t.deliverAt).toBeCloseTo(i * 11.2, 6));
  });

  it('lets a burst of the bucket depth through at once, then the rate', () => {
    const bucket = new TokenBucket();
    bucket.configure(1000, 5000); // 1000 bytes/s, 5000 deep
    expect([0, 0, 0, 0, 0].map((at) => bucket.departure(at, 1000))).toEqual([0, 0, 0, 0, 0]);
    expect(bucket.departure(0, 1000)).toBeCloseTo(1000, 6);
    expect(bucket.departure(0, 500)).toBeCloseTo(1500, 6);
    // Idle long enough, the bucket is full again (and no fuller).
    expect(bucket.departure(100_000, 5000)).toBe(100_000);
    expect(bucket.departure(100_000, 1000)).toBeCloseTo(101_000, 6);
  });

  it('shares one bucket between the connections of a direction', () => {
    const up = direction({ up: { bytesPerSecond: 10_000, burstBytes: 1000 }, segmentBytes: 1000 });
    const a = new StreamSchedule(up, 1, 0);
    const b = new StreamSchedule(up, 1, 1);
    const timings = [...run(a, [{ at: 0, bytes: 5000 }]), ...run(b, [{ at: 0, bytes: 5000 }])];
    const last = Math.max(...timings.map((t) => t.deliverAt));
    expect(last).toBeCloseTo(900, 6); // 10,000 bytes at 10,000 bytes/s, the first 1000 at once
  });

  it('adds the delay after the bucket', () => {
    const schedule = new StreamSchedule(direction({ up: { bytesPerSecond: 1400, delayMs: 100 } }), 1, 0);
    expect(run(schedule, [{ at: 0, bytes: 2800 }]).map((t) => t.deliverAt)).toEqual([100, 1100]);
  });
});

describe('loss', () => {
  const lossy: LinkSettings = { up: { delayMs: 125, jitterMs: 25, loss: 0.05 }, down: { delayMs: 125 }, segmentBytes: 100 };

  it('stalls a lost segment by max(200 ms, 2 × round trip), and holds back what follows', () => {
    const schedule = new StreamSchedule(direction(lossy), 9, 0);
    const timings = run(schedule, spaced(400, 10, 100));
    const lost = timings.filter((t) => t.lost);
    expect(lost.length).toBeGreaterThan(5);
    expect(lost.length).toBeLessThan(40);
    for (const packet of lost) {
      expect(packet.deliverAt - packet.offeredAt).toBeGreaterThanOrEqual(100 + 500);
      // Everything offered after it within the stall arrives after it.
      for (const later of timings.filter((t) => t.offset > packet.offset && t.offeredAt < packet.deliverAt - 150))
        expect(later.deliverAt).toBeGreaterThanOrEqual(packet.deliverAt);
    }
    const times = timings.map((t) => t.deliverAt);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('takes the stall given, and a minimum of 200 ms on a short round trip', () => {
    const always = (settings: LinkSettings) => run(new StreamSchedule(direction(settings), 1, 0), [{ at: 0, bytes: 10 }])[0].deliverAt;
    expect(always({ up: { loss: 1, delayMs: 10 } })).toBe(10 + 200);
    expect(always({ up: { loss: 1, delayMs: 10 }, lossStallMs: 333 })).toBe(10 + 333);
    expect(always({ up: { loss: 1, delayMs: 150 }, down: { delayMs: 150 } })).toBe(150 + 600);
  });
});

describe('determinism', () => {
  const settings: LinkSettings = { up: { delayMs: 125, jitterMs: 25, loss: 0.03 } };

  it('makes the same decisions for the same seed and traffic', () => {
    const offers = spaced(300, 3, 700);
    const first = run(new StreamSchedule(direction(settings), 2024, 3), offers);
    const second = run(new StreamSchedule(direction(settings), 2024, 3), offers);
    expect(second).toEqual(first);
    const otherSeed = run(new StreamSchedule(direction(settings), 2025, 3), offers);
    expect(otherSeed.map((t) => t.deliverAt)).not.toEqual(first.map((t) => t.deliverAt));
    const otherConnection = run(new StreamSchedule(direction(settings), 2024, 4), offers);
    expect(otherConnection.map((t) => t.deliverAt)).not.toEqual(first.map((t) => t.deliverAt));
  });

  it('keeps the fates of packets at multiples of segmentBytes however the bytes were grouped into reads', () => {
    const fates = (offers: Array<{ at: number; bytes: number }>) =>
      run(new StreamSchedule(direction(settings), 77, 0), offers)
        .filter((t) => t.offset % 1400 === 0)
        .map((t) => ({ offset: t.offset, lost: t.lost, delay: (t.deliverAt - t.offeredAt).toFixed(6) }));
    // Reads far apart, so that no packet waits behind another: each delay is the packet's own.
    const whole = fates(Array.from({ length: 100 }, (_, i) => ({ at: i * 10_000, bytes: 1400 })));
    const halves = fates(Array.from({ length: 200 }, (_, i) => ({ at: i * 10_000, bytes: 700 })));
    const tenths = fates(Array.from({ length: 1000 }, (_, i) => ({ at: i * 10_000, bytes: 140 })));
    expect(whole.filter((f) => f.lost).length).toBeGreaterThan(0);
    expect(halves).toEqual(whole);
    expect(tenths).toEqual(whole);
  });

  it('delivers held packets a one-way delay after an outage, in order', () => {
    const schedule = new StreamSchedule(direction({ up: { delayMs: 100 } }), 1, 0);
    const [first, second] = run(schedule, [
      { at: 0, bytes: 10 },
      { at: 5, bytes: 10 },
    ]);
    expect([first.deliverAt, second.deliverAt]).toEqual([100, 105]);
    // The outage ends at 1000: both were due during it.
    expect(schedule.afterOutage(1000, first.deliverAt)).toBe(1100);
    expect(schedule.afterOutage(1000, second.deliverAt)).toBe(1100);
    expect(schedule.lastDelivery).toBe(1100);
  });
});
