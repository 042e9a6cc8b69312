import { setTimeout as delay } from 'node:timers/promises';
import { deriveSeed, mulberry32 } from '../../test/support/flaky-link/prng.js';
import type { LinkSetup } from '../suites/link.js';
import type { ConsoleClient } from './link-console.js';
import { quietOutput, waitFor } from './link-echo.js';
import { percentile } from './load.js';
import { round } from './process-stats.js';

/**
 * Part 3 of the link bench: drop detection and resume, with a ticker in the pane (a line every
 * 100 ms, so live bytes always follow a resume).
 *
 * - blackhole → the connection's state is "reconnecting" (what the console shows);
 * - heal, 0.5–1.5 s after that → the first output frame on the client (a live byte): the attempt
 *   made during the blackhole goes through once the link is back;
 * - roam (every connection reset, a new port) → the first output frame; a socket the client opens
 *   before the proxy has announced the new port waits for it (the phone's new network coming up);
 * - Ctrl-C under `yes` on a 1 Mbit/s, 300 ms round trip link → the prompt on the cursor's row.
 */

export interface DropOptions {
  seed: number;
  events: number;
  ctrlCEvents: number;
  /** The link's base round trip (ms). */
  rttMs: number;
}

const TICKER = `perl -MTime::HiRes=sleep -e '$|=1; while (1) { print "tick ", time, "\\n"; sleep 0.1 }'\r`;
const PROMPT = 'LINKPROMPT> ';
const EVENT_TIMEOUT_MS = 30_000;

/** Resolves with the time of the first output frame from now on, on a socket opened after the `sockets`-th. */
function nextOutput(client: ConsoleClient, sockets: number, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stop();
      resolve(null);
    }, timeoutMs);
    const stop = client.listen({
      output: (_data, _offset, _ack, at) => {
        if (client.sockets <= sockets) return;
        clearTimeout(timer);
        stop();
        resolve(at);
      },
    });
  });
}

function describe(samples: number[], timeouts: number, target: string): Record<string, unknown> {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number): number | null => (sorted.length === 0 ? null : round(percentile(sorted, p)));
  return { events: samples.length + timeouts, timeouts, p50_ms: at(50), p95_ms: at(95), p99_ms: at(99), max_ms: at(100), target };
}

export async function measureDrops(setup: LinkSetup, options: DropOptions): Promise<Record<string, unknown>> {
  const { seed, events, ctrlCEvents, rttMs } = options;
  const random = mulberry32(deriveSeed(seed, 0xd409));
  const { link, client } = await setup.environment('Link drops', seed + 3);
  client.type(`PS1='${PROMPT}'\r`);
  await quietOutput(client, 500);
  client.type(TICKER);
  await delay(1000);

  const toReconnecting: number[] = [];
  const toFirstByte: number[] = [];
  let blackholeTimeouts = 0;
  let healTimeouts = 0;
  for (let event = 0; event < events; event += 1) {
    await delay(500 + random() * 1500);
    const sockets = client.sockets;
    const blackholed = performance.now();
    await link.blackhole();
    const shown = await client.until((state) => state.kind === 'reconnecting', EVENT_TIMEOUT_MS).catch(() => null);
    if (shown === null) blackholeTimeouts += 1;
    else toReconnecting.push(shown - blackholed);
    await delay(500 + random() * 1000);
    const first = nextOutput(client, sockets, EVENT_TIMEOUT_MS);
    const healed = performance.now();
    await link.heal();
    const at = await first;
    if (at === null) healTimeouts += 1;
    else toFirstByte.push(at - healed);
    await client.until((state) => state.kind === 'connected', EVENT_TIMEOUT_MS);
  }

  const afterRoam: number[] = [];
  let roamTimeouts = 0;
  const socketsBefore = client.sockets;
  for (let event = 0; event < events; event += 1) {
    // More than 3 s after the last welcome: the console's back-off starts over (a connection that
    // keeps dropping soon after its welcome backs off, by design).
    await delay(3500 + random() * 1500);
    await client.until((state) => state.kind === 'connected', EVENT_TIMEOUT_MS);
    // A socket opened during the roam connects once the new port is known (the new network is up).
    const roamed = performance.now();
    const first = nextOutput(client, client.sockets, EVENT_TIMEOUT_MS);
    client.roaming = link.roam();
    await client.roaming;
    client.roaming = null;
    const at = await first;
    if (at === null) roamTimeouts += 1;
    else afterRoam.push(at - roamed);
  }
  const roamSockets = client.sockets - socketsBefore;

  // Ctrl-C under `yes`, on a slower link.
  client.type('\x03');
  await quietOutput(client, 500);
  await link.set({ up: { delayMs: 150, jitterMs: 0 }, down: { delayMs: 150, jitterMs: 0, bytesPerSecond: 125_000 } });
  await delay(1000);
  const toPrompt: number[] = [];
  let promptTimeouts = 0;
  let jumps = 0;
  const stopClears = client.listen({ cleared: () => void (jumps += 1) });
  for (let event = 0; event < ctrlCEvents; event += 1) {
    client.type('yes\r');
    await delay(1500 + random() * 1000);
    const pressed = performance.now();
    client.type('\x03');
    const visible = await waitFor(() => client.cursorLine().startsWith(PROMPT), EVENT_TIMEOUT_MS);
    if (visible) toPrompt.push(performance.now() - pressed);
    else promptTimeouts += 1;
    await quietOutput(client, 1000, EVENT_TIMEOUT_MS);
  }
  stopClears();

  return {
    blackhole_to_reconnecting: describe(toReconnecting, blackholeTimeouts, '<= 3000 ms'),
    heal_to_first_live_byte: { ...describe(toFirstByte, healTimeouts, `p99 <= ${rttMs + 30} ms (1 RTT + 30 ms)`), round_trip_ms: rttMs },
    roam_to_first_live_byte: {
      ...describe(afterRoam, roamTimeouts, `p99 <= ${rttMs + 30} ms (1 RTT + 30 ms)`),
      sockets_opened: roamSockets,
    },
    ctrl_c_under_yes_to_prompt: {
      ...describe(toPrompt, promptTimeouts, 'p95 <= 1000 ms'),
      link: '1 Mbit/s to the client, 300 ms round trip',
      jumps_to_current_screen: jumps,
    },
  };
}
