import { setTimeout as delay } from 'node:timers/promises';
import { percentile } from './load.js';
import { round } from './process-stats.js';
import { arrival, ECHO_PACE_MS, quiet, type EchoResult, type Terminal } from './terminals.js';

const KEYS = 'kqwzxjvy';
const ECHO_TIMEOUT_MS = 2000;

/**
 * Keystroke echo at a `cat` (as measureEcho in terminals.ts) for at most `ms` or `samples` keys,
 * whichever ends first: under load an echo can take long, and the measurement must stay inside
 * its phase. The line is erased now and then and at the end.
 */
export async function echoWithin(terminal: Terminal, samples: number, ms: number): Promise<EchoResult> {
  const latencies: number[] = [];
  let timeouts = 0;
  const deadline = performance.now() + ms;
  for (let i = 0; i < samples && performance.now() < deadline; i += 1) {
    const key = KEYS[i % KEYS.length];
    const echoed = arrival(terminal, key, Math.min(ECHO_TIMEOUT_MS, Math.max(1, deadline - performance.now())));
    const sent = performance.now();
    terminal.write(key);
    const at = await echoed;
    if (at === null) timeouts += 1;
    else latencies.push(at - sent);
    if (i % 1000 === 999) terminal.write('\x15');
    await delay(ECHO_PACE_MS);
  }
  terminal.write('\x15');
  await quiet(terminal, 200, 2000);
  latencies.sort((a, b) => a - b);
  const at = (p: number): number => round(percentile(latencies, p));
  return { p50_ms: at(50), p90_ms: at(90), p99_ms: at(99), max_ms: at(100), samples: latencies.length, timeouts };
}
