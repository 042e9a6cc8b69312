import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { percentile } from './load.js';
import type { ConsoleClient } from './link-console.js';
import { KeyTracker, type KeyRecord } from './link-keys.js';
import type { Segment, Step } from './link-trace.js';
import { round } from './process-stats.js';

/**
 * Part 1 of the link bench: the trace (./link-trace.ts) typed into the console's client through
 * the bad link, one key at a time with its human gap, each key timed by ./link-keys.ts.
 */

const SETTLE_TIMEOUT_MS = 10_000;
const QUIET_MS = 300;
const WITHIN_MS = 5;

/** Polls `test` every 5 ms until it holds (true) or `timeoutMs` passed (false). */
export async function waitFor(test: () => boolean, timeoutMs: number): Promise<boolean> {
  const started = performance.now();
  while (!test()) {
    if (performance.now() - started > timeoutMs) return false;
    await delay(5);
  }
  return true;
}

/** Waits until no output frame has come for `quietMs` (at most `maxMs`). */
export async function quietOutput(client: ConsoleClient, quietMs: number, maxMs = 10_000): Promise<void> {
  let last = performance.now();
  const stop = client.listen({ output: (_data, _offset, _ack, at) => void (last = at) });
  try {
    await waitFor(() => performance.now() - last >= quietMs, maxMs);
  } finally {
    stop();
  }
}

/** An arrow key as the terminal sends it in its current cursor-key mode (as xterm.js would). */
function arrow(client: ConsoleClient, direction: 'left' | 'right'): string {
  const final = direction === 'left' ? 'D' : 'C';
  return client.term.modes.applicationCursorKeysMode ? `\x1bO${final}` : `\x1b[${final}`;
}

function summary(keys: KeyRecord[]): Record<string, number | null> {
  const latencies = keys.map((key) => KeyTracker.latency(key));
  const drawn = latencies.filter((value): value is number => value !== null).sort((a, b) => a - b);
  return {
    keystrokes: keys.length,
    within_5ms_share: keys.length === 0 ? null : round(drawn.filter((value) => value <= WITHIN_MS).length / keys.length, 4),
    median_ms: drawn.length === 0 ? null : round(percentile(drawn, 50)),
    p90_ms: drawn.length === 0 ? null : round(percentile(drawn, 90)),
    p99_ms: drawn.length === 0 ? null : round(percentile(drawn, 99)),
    never_drawn: keys.length - drawn.length,
  };
}

/** Replays the trace and returns the figures (targets beside them). */
export async function replayTrace(client: ConsoleClient, steps: Step[], rttMs: number): Promise<Record<string, unknown>> {
  const tracker = new KeyTracker(client);
  let lastSeq = 0;
  let settleTimeouts = 0;
  const started = performance.now();
  for (const step of steps) {
    if (step.kind === 'key') {
      await delay(step.gapMs);
      const data = step.data === 'left' || step.data === 'right' ? arrow(client, step.data) : step.data;
      lastSeq = tracker.type(data, step.segment) ?? lastSeq;
    } else if (step.kind === 'settle') {
      if (!(await waitFor(() => tracker.ackDrawn >= lastSeq, SETTLE_TIMEOUT_MS))) settleTimeouts += 1;
      await quietOutput(client, QUIET_MS);
    } else {
      if (!(await waitFor(() => client.screen().some((row) => row.includes(step.text)), SETTLE_TIMEOUT_MS))) settleTimeouts += 1;
      await delay(step.reactionMs);
    }
  }
  await waitFor(() => tracker.ackDrawn >= lastSeq, SETTLE_TIMEOUT_MS);
  await delay(Math.max(500, rttMs * 2));
  tracker.finish();

  const counters = client.engine.counters;
  const keys = tracker.keys;
  const bySegment: Record<string, unknown> = {};
  for (const segment of ['shell', 'vim-insert', 'vim-normal', 'less', 'password'] satisfies Segment[])
    bySegment[segment] = summary(keys.filter((key) => key.segment === segment));
  const erased = [...counters.erasedAfterMs].sort((a, b) => a - b);
  const overall = summary(keys);
  // Every key with its timings, for studying where the share is lost (BENCH_LINK_KEYS_OUT=<file>).
  const out = process.env.BENCH_LINK_KEYS_OUT;
  if (out) writeFileSync(out, keys.map((key) => JSON.stringify({ ...key, latency: KeyTracker.latency(key) })).join('\n') + '\n');
  return {
    seconds: round((performance.now() - started) / 1000, 1),
    ...overall,
    targets: {
      within_5ms_share: '>= 0.85',
      median_ms: '<= 5',
      wrong_shown_share: '<= 0.005, each erased within one RTT',
      password_predicted_chars_shown: '0',
    },
    by_segment: bySegment,
    predictions: {
      made: counters.predicted,
      shown: counters.shown,
      shown_at_once: counters.shownAtOnce,
      confirmed: counters.confirmed,
      mismatches: counters.mismatches,
      wrong: counters.wrong,
      wrong_shown: counters.wrongShown,
      wrong_shown_share: keys.length === 0 ? null : round(counters.wrongShown / keys.length, 4),
      erased_after_ms_max: erased.length === 0 ? null : round(erased[erased.length - 1]),
      erased_within_one_rtt: erased.filter((ms) => ms <= rttMs).length,
      erased_samples: erased.length,
      discarded: counters.discarded,
      smoothed_rtt_ms: client.engine.rttMs === null ? null : round(client.engine.rttMs),
    },
    password: {
      keystrokes: keys.filter((key) => key.segment === 'password').length,
      predicted_chars_shown: tracker.secretCells,
      checks_with_predicted_chars: tracker.secretChecksWithCells,
      keys_with_prediction_shown: keys.filter((key) => key.segment === 'password' && key.shownAt !== null).length,
    },
    settle_timeouts: settleTimeouts,
  };
}
