import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bothWays, FlakyLink } from '../../test/support/flaky-link/flaky-link.js';
import { createEnvironment, register, waitForPhase, type User } from '../support/api-client.js';
import { ConsoleClient, type ConsoleClientOptions } from '../support/link-console.js';
import { measureDrops } from '../support/link-drops.js';
import { quietOutput, replayTrace } from '../support/link-echo.js';
import { exactlyOnceAcrossResets } from '../support/link-resets.js';
import { generateTrace } from '../support/link-trace.js';
import { stopServer } from '../support/process-stats.js';
import { killTmuxServers, setTeamPlan, startServer, type BenchServer } from '../support/server.js';
import type { BenchContext } from '../context.js';

/**
 * The terminal through a bad link (issue 15): every figure goes through the flaky-link proxy
 * (test/support/flaky-link, a process of its own) between the console's own terminal client
 * (console/src/terminal: TerminalConnection, OutputSink, PredictionEngine, run here over an
 * `@xterm/headless` terminal, bench/support/link-console.ts) and the built server on the local
 * runtime (real tmux). Targets are printed beside the figures.
 *
 *   1. predicted echo at 250 ± 50 ms round trip: a seeded trace of ≥ BENCH_LINK_KEYSTROKES keys
 *      (bash prompt, vim insert and normal mode, less, a `read -s` password prompt), human gaps;
 *      per key the perceived latency (prediction drawn, or the server's echo drawn), wrong
 *      predictions, predicted characters shown at the password prompt;
 *   2. exactly once across resets: BENCH_LINK_RESET_SECONDS of a link reset every 5 ± 2 s while a
 *      producer in the environment writes BENCH_LINK_PRODUCE_BYTES and the client types
 *      BENCH_LINK_KEYS keys into `cat > file`; output SHA-256 against the ground truth (the
 *      session's stream as a reference client straight on the server received it, by offset),
 *      the lines read back against the producer's file, the typed file against what was typed;
 *   3. drop detection and resume: blackhole → "reconnecting", heal → first live byte, roam → first
 *      live byte, each also less the round trip the link imposed on it (BENCH_LINK_DROP_EVENTS
 *      each), Ctrl-C under `yes` at 1 Mbit/s and 300 ms round trip → prompt visible
 *      (BENCH_LINK_CTRL_C_EVENTS).
 *
 *   BENCH_LINK_PARTS=echo,resets,drops   the parts to run, in this order
 *   BENCH_LINK_SEED=15                   seeds the link, the trace, the producer, the typing and the resets
 *   BENCH_LINK_KEYSTROKES=2000           keys of the trace (part 1; the trace ends its last cycle)
 *   BENCH_LINK_RESET_SECONDS=600         duration of part 2 (the ten minutes)
 *   BENCH_LINK_PRODUCE_BYTES=            bytes produced in part 2 (default 50 MB per 600 s: 83 KB/s)
 *   BENCH_LINK_KEYS=                     keys typed in part 2 (default 5,000 per 600 s)
 *   BENCH_LINK_DROP_EVENTS=30            blackholes, and roams, in part 3
 *   BENCH_LINK_CTRL_C_EVENTS=10          Ctrl-C events in part 3
 */

const number = (name: string, fallback: number): number => Number(process.env[name] || fallback);
const PARTS = (process.env.BENCH_LINK_PARTS ?? 'echo,resets,drops').split(',');
const SEED = number('BENCH_LINK_SEED', 15);
const KEYSTROKES = number('BENCH_LINK_KEYSTROKES', 2000);
const RESET_SECONDS = number('BENCH_LINK_RESET_SECONDS', 600);
const PRODUCE_BYTES = number('BENCH_LINK_PRODUCE_BYTES', Math.round((50e6 * RESET_SECONDS) / 600));
const RESET_KEYS = number('BENCH_LINK_KEYS', Math.round((5000 * RESET_SECONDS) / 600));
const DROP_EVENTS = number('BENCH_LINK_DROP_EVENTS', 30);
const CTRL_C_EVENTS = number('BENCH_LINK_CTRL_C_EVENTS', 10);

/** The phone's link of parts 1–3: 250 ± 50 ms round trip (125 ± 25 ms each way). */
const PHONE_RTT_MS = 250;
const PHONE = bothWays({ delayMs: PHONE_RTT_MS / 2, jitterMs: 25 });
export const COLS = 100;
export const ROWS = 30;
const DB_NAME = 'bench_link';

const log = (message: string): void => void process.stderr.write(`[bench] link: ${message}\n`);

/** What each part gets: a running environment of its own, behind a fresh link. */
export interface LinkSetup {
  server: BenchServer;
  user: User;
  dir: string;
  /** A new environment (running), a link in front of the server and a connected console client. */
  environment(
    name: string,
    seed: number,
    options?: Pick<ConsoleClientOptions, 'onRow'>,
  ): Promise<{ id: string; link: FlakyLink; client: ConsoleClient }>;
}

export async function link(ctx: BenchContext): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync('/tmp/dpl-');
  const links: FlakyLink[] = [];
  const clients: ConsoleClient[] = [];
  let server: BenchServer | null = null;
  const result: Record<string, unknown> = {
    link: { round_trip_ms: `${PHONE_RTT_MS} ± 50 (125 ± 25 ms each way, per packet)`, proxy: 'test/support/flaky-link', seed: SEED },
  };
  try {
    // Tokens valid for the whole run (part 2 alone lasts ten minutes; the console would refresh them).
    server = await startServer(ctx.mongodbUri, DB_NAME, ctx.port, {
      TRUSTED_PROXIES: 'loopback',
      DATA_DIR: dataDir,
      JWT_ACCESS_TTL_SECONDS: '7200',
    });
    const user = await register(server.baseUrl, `blink${Date.now().toString(36)}`, '10.79.0.1');
    await setTeamPlan(ctx.mongodbUri, DB_NAME, dataDir, user.name);
    const setup: LinkSetup = {
      server,
      user,
      dir: dataDir,
      environment: async (name, seed, options = {}) => {
        const id = await createEnvironment(server!.baseUrl, user, name);
        await waitForPhase(server!.baseUrl, new Map([[user, [id]]]), 'running', 60_000);
        const flaky = await FlakyLink.start({ target: server!.baseUrl, seed, ...PHONE });
        links.push(flaky);
        const client = await ConsoleClient.open({ link: flaky, environmentId: id, token: user.token, cols: COLS, rows: ROWS, ...options });
        clients.push(client);
        await quietOutput(client, 1000, 15_000);
        return { id, link: flaky, client };
      },
    };

    if (PARTS.includes('echo')) {
      log(`part 1: a trace of ${KEYSTROKES} keys at ${PHONE_RTT_MS} ± 50 ms`);
      const { client } = await setup.environment('Link echo', SEED);
      const files = { notes: join(dataDir, 'notes.txt'), pager: join(dataDir, 'pager.txt') };
      writePagerFile(files.pager);
      const steps = generateTrace(SEED, KEYSTROKES, files);
      result.predicted_echo = await replayTrace(client, steps, PHONE_RTT_MS);
    }
    if (PARTS.includes('resets')) {
      log(`part 2: ${RESET_SECONDS} s of resets every 5 ± 2 s, ${PRODUCE_BYTES} bytes produced, ${RESET_KEYS} keys typed`);
      result.exactly_once_across_resets = await exactlyOnceAcrossResets(setup, {
        seed: SEED,
        seconds: RESET_SECONDS,
        produceBytes: PRODUCE_BYTES,
        keys: RESET_KEYS,
      });
    }
    if (PARTS.includes('drops')) {
      log(`part 3: ${DROP_EVENTS} blackholes, ${DROP_EVENTS} roams, ${CTRL_C_EVENTS} Ctrl-C under yes`);
      result.drops = await measureDrops(setup, { seed: SEED, events: DROP_EVENTS, ctrlCEvents: CTRL_C_EVENTS, rttMs: PHONE_RTT_MS });
    }
    return result;
  } finally {
    for (const client of clients) client.stop();
    for (const flaky of links) await flaky.close();
    if (server) await stopServer(server);
    killTmuxServers(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A text file for `less`: numbered lines of words (deterministic). */
function writePagerFile(path: string): void {
  const words = ['alpha', 'build', 'cache', 'deploy', 'echo', 'fetch', 'green', 'host', 'input', 'merge', 'node', 'shell'];
  const lines: string[] = [];
  for (let line = 0; line < 600; line += 1) {
    const parts = [String(line + 1).padStart(4, '0')];
    for (let word = 0; word < 8; word += 1) parts.push(words[(line * 7 + word * 3) % words.length]);
    lines.push(parts.join(' '));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}
