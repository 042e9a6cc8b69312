import { setTimeout as delay } from 'node:timers/promises';
import { deriveSeed, mulberry32 } from '../../test/support/flaky-link/prng.js';
import type { LinkSetup } from '../suites/link.js';
import type { FlakyLink } from '../../test/support/flaky-link/flaky-link.js';
import type { ConsoleClient } from './link-console.js';
import { quietOutput } from './link-echo.js';
import { describeExchanges, exchangeOf, outputFrameTail, type Exchange } from './link-exchange.js';
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
 *   for each heal and roam, the round trip the link imposed on that exchange (the delays the proxy
 *   applied to the new connection's request and to the packet that completed its first frame,
 *   link-exchange.ts) is subtracted: what remains is the server's, the client's and the harness's;
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

/** The first output frame from now on, on a socket opened after the `sockets`-th: when, and its end (offset, ack). */
interface FirstFrame {
  at: number;
  offset: number;
  ack: number | null;
}

function nextOutput(client: ConsoleClient, sockets: number, timeoutMs: number): Promise<FirstFrame | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stop();
      resolve(null);
    }, timeoutMs);
    const stop = client.listen({
      output: (_data, offset, ack, at) => {
        if (client.sockets <= sockets) return;
        clearTimeout(timer);
        stop();
        resolve({ at, offset, ack });
      },
    });
  });
}

/** The exchange that carried the first live byte, after the event at `eventAt` (bench clock), from the proxy's record. */
async function traced(link: FlakyLink, eventAt: number, first: FirstFrame): Promise<Exchange | null> {
  const frame = await link.locate('down', outputFrameTail(first.offset, first.ack));
  if (!frame) return null;
  const { recent } = await link.stats();
  return exchangeOf(recent, frame, performance.timeOrigin + eventAt, performance.timeOrigin + first.at);
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
  const healExchanges: Exchange[] = [];
  let healUntraced = 0;
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
    const frame = await first;
    if (frame === null) healTimeouts += 1;
    else toFirstByte.push(frame.at - healed);
    await client.until((state) => state.kind === 'connected', EVENT_TIMEOUT_MS);
    const exchange = frame === null ? null : await traced(link, healed, frame);
    if (exchange) healExchanges.push(exchange);
    else if (frame !== null) healUntraced += 1;
  }

  const afterRoam: number[] = [];
  const roamExchanges: Exchange[] = [];
  let roamUntraced = 0;
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
    const frame = await first;
    if (frame === null) roamTimeouts += 1;
    else afterRoam.push(frame.at - roamed);
    const exchange = frame === null ? null : await traced(link, roamed, frame);
    if (exchange) roamExchanges.push(exchange);
    else if (frame !== null) roamUntraced += 1;
  }
  const roamSockets = client.sockets - socketsBefore;

  const ctrlC = await ctrlCUnderYes(link, client, random, ctrlCEvents);

  return {
    blackhole_to_reconnecting: describe(toReconnecting, blackholeTimeouts, '<= 3000 ms'),
    heal_to_first_live_byte: {
      ...describe(toFirstByte, healTimeouts, `p99 <= ${rttMs + 30} ms at the link's mean round trip`),
      mean_round_trip_ms: rttMs,
      per_exchange: describeExchanges(healExchanges, healUntraced),
    },
    roam_to_first_live_byte: {
      ...describe(afterRoam, roamTimeouts, `p99 <= ${rttMs + 30} ms at the link's mean round trip`),
      mean_round_trip_ms: rttMs,
      sockets_opened: roamSockets,
      per_exchange: describeExchanges(roamExchanges, roamUntraced),
    },
    ctrl_c_under_yes_to_prompt: ctrlC,
  };
}

/**
 * Ctrl-C under `yes` on a 1 Mbit/s, 300 ms round trip link → the prompt on the cursor's row, and
 * where the time went, event by event: the output in flight on the link when Ctrl-C was pressed
 * (the proxy's queue), when the client learnt it was written (the first `ack` covering it), when
 * it jumped to the current screen (`reset`), when the prompt showed.
 */
async function ctrlCUnderYes(
  link: FlakyLink,
  client: ConsoleClient,
  random: () => number,
  events: number,
): Promise<Record<string, unknown>> {
  client.type('\x03');
  await quietOutput(client, 500);
  await link.set({ up: { delayMs: 150, jitterMs: 0 }, down: { delayMs: 150, jitterMs: 0, bytesPerSecond: 125_000 } });
  await delay(1000);
  const toPrompt: number[] = [];
  const parts = { inFlight: [] as number[], acked: [] as number[], jumped: [] as number[] };
  let promptTimeouts = 0;
  let jumps = 0;
  let jumpsBeforePrompt = 0;
  const stopCounting = client.listen({ cleared: () => void (jumps += 1) });
  for (let event = 0; event < events; event += 1) {
    client.type('yes\r');
    await delay(1500 + random() * 1000);
    const pressed = performance.now();
    const seq = client.type('\x03') ?? Number.POSITIVE_INFINITY;
    const queued = link.stats();
    let acked: number | null = null;
    let jumped: number | null = null;
    const visible = new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => done(null), EVENT_TIMEOUT_MS);
      const done = (at: number | null): void => {
        clearTimeout(timer);
        stop();
        resolve(at);
      };
      const stop = client.listen({
        output: (_data, _offset, ack, at) => void (acked ??= ack !== null && ack >= seq ? at : null),
        ack: (ackSeq, at) => void (acked ??= ackSeq >= seq ? at : null),
        cleared: (at) => void (jumped ??= at),
        drawn: (_data, at) => void (client.cursorLine().startsWith(PROMPT) && done(at)),
      });
    });
    const at = await visible;
    parts.inFlight.push((await queued).queued.down);
    if (at === null) {
      promptTimeouts += 1;
    } else {
      toPrompt.push(at - pressed);
      if (acked !== null) parts.acked.push(acked - pressed);
      if (jumped !== null) {
        jumpsBeforePrompt += 1;
        parts.jumped.push(jumped - pressed);
      }
    }
    await quietOutput(client, 1000, EVENT_TIMEOUT_MS);
  }
  stopCounting();
  const spread = (values: number[]) => {
    const { p50_ms: p50, p95_ms: p95, max_ms: max } = describe(values, 0, '');
    return { p50, p95, max };
  };
  return {
    ...describe(toPrompt, promptTimeouts, 'p95 <= 1000 ms'),
    link: '1 Mbit/s to the client, 300 ms round trip',
    where_the_time_goes: {
      bytes_in_flight_on_the_link_at_ctrl_c: spread(parts.inFlight),
      ctrl_c_acknowledged_ms: spread(parts.acked),
      jumped_to_current_screen_ms: { events: jumpsBeforePrompt, ...spread(parts.jumped) },
    },
    jumps_to_current_screen: jumps,
  };
}
