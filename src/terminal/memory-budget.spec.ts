import { MIN_REPLAY_BYTES, ReplayBudget, replayLevel } from './memory-budget.js';
import { ReplayBuffer } from './replay-buffer.js';

const KiB = 1024;

function filled(kib: number): ReplayBuffer {
  const buffer = new ReplayBuffer(4096 * KiB);
  for (let i = 0; i < kib / 16; i += 1) buffer.append(Buffer.alloc(16 * KiB, i));
  return buffer;
}

describe('replayLevel', () => {
  it('is the highest common cap under which the sizes fit the limit', () => {
    expect(replayLevel([700 * KiB, 500 * KiB, 100 * KiB], 1300 * KiB)).toBe(700 * KiB);
    expect(replayLevel([700 * KiB, 500 * KiB, 100 * KiB], 1100 * KiB)).toBe(500 * KiB);
    expect(replayLevel([700 * KiB, 500 * KiB, 100 * KiB], 900 * KiB)).toBe(400 * KiB);
  });

  it('never goes below the per-session minimum', () => {
    expect(replayLevel([700 * KiB, 500 * KiB], 10 * KiB)).toBe(MIN_REPLAY_BYTES);
  });
});

describe('ReplayBudget', () => {
  it('trims the largest buffers first, oldest bytes first, and leaves the small ones alone', () => {
    const budget = new ReplayBudget(900 * KiB);
    const [large, medium, small] = [filled(704), filled(512), filled(96)];
    for (const buffer of [large, medium, small]) budget.track(buffer);
    budget.enforce();
    expect(budget.size).toBeLessThanOrEqual(900 * KiB);
    expect([large.size, medium.size, small.size]).toEqual([400 * KiB, 400 * KiB, 96 * KiB]);
    // What is kept is the newest: a resume from before it gets null (a reset and a redraw).
    expect(large.end).toBe(704 * KiB);
    expect(large.start).toBe(304 * KiB);
    expect(large.since(0)).toBeNull();
    expect(Buffer.concat(large.since(304 * KiB) ?? [])).toHaveLength(400 * KiB);
  });

  it('keeps the minimum per buffer even when that is over the limit, and forgets untracked buffers', () => {
    const budget = new ReplayBudget(64 * KiB);
    const [one, two] = [filled(256), filled(256)];
    budget.track(one);
    budget.track(two);
    budget.enforce();
    expect([one.size, two.size]).toEqual([MIN_REPLAY_BYTES, MIN_REPLAY_BYTES]);
    budget.untrack(two);
    expect(budget.size).toBe(MIN_REPLAY_BYTES);
  });
});
