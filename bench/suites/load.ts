import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort, startRedis, type TestRedis } from '../../test/support/redis-server.js';
import { login } from '../support/api-client.js';
import { LoadClients } from '../support/load-clients.js';
import { echoWithin } from '../support/load-echo.js';
import { createFleet, deleteFleet, machineCpu, metrics, ProducerSwitch, startProducers, type Fleet } from '../support/load-fleet.js';
import { percentile } from '../support/load.js';
import type { ClientFigures, GeneratorReply } from '../support/load-protocol.js';
import { alive, cpuPercent, mib, round, sampleRss, steadyRss, stopServer } from '../support/process-stats.js';
import { killTmuxServers, startServer, type BenchServer } from '../support/server.js';
import { COLS, quiet, ROWS, startCat, stopCat, WsTerminal } from '../support/terminals.js';
import type { BenchContext } from '../context.js';

/**
 * The load Coder publishes as its scale target: 1,000 terminal connections, each receiving
 * 40 KB/s (200 environments × 5 clients), output produced inside each environment (a producer
 * typed at its shell, printing while its switch file exists), the clients in a process of their
 * own (bench/support/load-generator.ts). Clients connect while the producers are idle, then:
 *
 *   1. light: LIGHT environments × CLIENTS clients, producers only there (the reference);
 *   2. load: every environment producing, every client reading at full speed;
 *   3. slow readers: the same, with SLOW of each environment's clients reading at SLOW_RATE;
 *
 * each with one more client typing at `cat` in an environment of its own (echo p99), the server's
 * CPU and RSS, delivered throughput per client (p1/p50) and dropped connections; 2 and 3 with one
 * replica (no Redis) and with two (REDIS_URL, one database, clients split between them).
 *
 *   BENCH_LOAD_ENVIRONMENTS=200  BENCH_LOAD_CLIENTS_PER_ENVIRONMENT=5  BENCH_LOAD_SECONDS=30
 *   BENCH_LOAD_LIGHT_ENVIRONMENTS=5  BENCH_LOAD_BYTES_PER_SECOND=40000
 *   BENCH_LOAD_SLOW_CLIENTS_PER_ENVIRONMENT=4  BENCH_LOAD_SLOW_BYTES_PER_SECOND=8000
 *   BENCH_LOAD_REPLICAS=1,2  BENCH_LOAD_ECHO_SAMPLES=500  BENCH_LOAD_SERVER_NICE=-20
 *
 * Scheduling: Coder's replicas have cores of their own and its workspaces run elsewhere; here the
 * environments share the 2 cores with the servers. With the kernel's autogroups every tmux pane's
 * session weighs as much as the whole bench (servers, Redis, the load generator: one session), so
 * 600 panes left the servers a few hundredths of a core. While the load runs, the bench's
 * autogroup gets the nice value BENCH_LOAD_SERVER_NICE (-20: about 87 panes' weight, as a
 * deployment's CPU requests would reserve the server's share; 0 leaves the old weighting), and the
 * result says what was applied.
 */

const number = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const ENVIRONMENTS = number('BENCH_LOAD_ENVIRONMENTS', 200);
const CLIENTS = number('BENCH_LOAD_CLIENTS_PER_ENVIRONMENT', 5);
const SECONDS = number('BENCH_LOAD_SECONDS', 30);
const LIGHT = Math.min(ENVIRONMENTS, number('BENCH_LOAD_LIGHT_ENVIRONMENTS', 5));
const RATE = number('BENCH_LOAD_BYTES_PER_SECOND', 40_000);
const SLOW = Math.min(CLIENTS, number('BENCH_LOAD_SLOW_CLIENTS_PER_ENVIRONMENT', CLIENTS - 1));
const SLOW_RATE = number('BENCH_LOAD_SLOW_BYTES_PER_SECOND', 8000);
const REPLICAS = (process.env.BENCH_LOAD_REPLICAS ?? '1,2').split(',').map(Number);
const ECHO_SAMPLES = number('BENCH_LOAD_ECHO_SAMPLES', 500);
const RSS_TARGET = 400e6;
const SERVER_NICE = number('BENCH_LOAD_SERVER_NICE', -20);

/** Gives the bench's autogroup (its servers, Redis, the load generator) a nice value; returns how to restore it, or why it could not. */
function weighInfrastructure(nice: number): { applied: string; restore: () => void } {
  const file = `/proc/${process.pid}/autogroup`;
  try {
    const before = /nice (-?\d+)/.exec(readFileSync(file, 'utf8'))?.[1] ?? '0';
    writeFileSync(file, String(nice));
    return { applied: readFileSync(file, 'utf8').trim(), restore: () => writeFileSync(file, before) };
  } catch (error) {
    return { applied: `not applied: ${error instanceof Error ? error.message : String(error)}`, restore: () => undefined };
  }
}

const log = (message: string): void => void process.stderr.write(`[bench] load: ${message}\n`);

const MEMORY_SERIES = ['nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes'];
const describeMemory = (values: Record<string, number>): Record<string, number> => ({
  heap_total_mib: mib(values.nodejs_heap_size_total_bytes),
  heap_used_mib: mib(values.nodejs_heap_size_used_bytes),
  external_mib: mib(values.nodejs_external_memory_bytes),
});

/**
 * BENCH_LOAD_HEAP_SNAPSHOT=<dir>: the servers run with --heapsnapshot-signal=SIGWINCH and write a
 * heap snapshot there at the end of each loaded phase (bench/support/heap-summary.ts reads it).
 */
const SNAPSHOT_DIR = process.env.BENCH_LOAD_HEAP_SNAPSHOT;
const snapshotOptions = (): Record<string, string> =>
  SNAPSHOT_DIR
    ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGWINCH --diagnostic-dir=${SNAPSHOT_DIR}`.trim() }
    : {};
const snapshot = (server: BenchServer): void => void (SNAPSHOT_DIR && process.kill(server.pid, 'SIGWINCH'));

type Measured = Extract<GeneratorReply, { type: 'measured' }>;

/** Delivered throughput per client, in KB/s: the slowest 1 % and the median. */
function throughput(clients: ClientFigures[], seconds: number): Record<string, number> {
  const rates = clients.map((client) => client.bytes / 1000 / seconds).sort((a, b) => a - b);
  const wire = clients.map((client) => client.wire_bytes / 1000 / seconds).sort((a, b) => a - b);
  return {
    clients: clients.length,
    p1_kb_per_second: round(percentile(rates, 1), 1),
    p50_kb_per_second: round(percentile(rates, 50), 1),
    wire_p50_kb_per_second: round(percentile(wire, 50), 1),
    total_mb_per_second: round(rates.reduce((sum, rate) => sum + rate, 0) / 1000, 2),
  };
}

interface Phase {
  clients: LoadClients;
  servers: BenchServer[];
  typer: WsTerminal;
}

/** One measured phase: the generator's window, the typing client's echo, each server's CPU and RSS. */
async function measurePhase(phase: Phase, slowPerEnvironment: number): Promise<Record<string, unknown>> {
  const { clients, servers, typer } = phase;
  const counters = ['terminal_slow_client_cutovers_total', 'terminal_output_bytes_total', 'terminal_upstream_errors_total'];
  const before = await Promise.all(servers.map((server) => metrics(server.baseUrl, counters)));
  const samplers = servers.map((server) => sampleRss(server.pid));
  const machine = machineCpu();
  const cpu = Promise.all(servers.map((server) => cpuPercent(server.pid, SECONDS * 1000 - 500)));
  // The echo starts a second into the window, once every client reads again.
  const echo = delay(1000).then(() => echoWithin(typer, ECHO_SAMPLES, (SECONDS - 2) * 1000));
  const measured: Measured = await clients.request(
    { type: 'measure', seconds: SECONDS, clientsPerEnvironment: CLIENTS, slowPerEnvironment, slowBytesPerSecond: SLOW_RATE },
    'measured',
  );
  const machineCores = machine();
  const [serverCpu, echoResult] = await Promise.all([cpu, echo]);
  const peaks = samplers.map((sampler) => sampler.stop());
  const steady = await Promise.all(servers.map((server) => steadyRss(server.pid)));
  const after = await Promise.all(
    servers.map((server) => metrics(server.baseUrl, [...counters, ...MEMORY_SERIES, 'terminal_clients', 'terminal_sessions'])),
  );
  const fast = measured.clients.filter((client) => !client.slow);
  const slow = measured.clients.filter((client) => client.slow);
  const perServer = servers.map((server, i) => ({
    // False when the server process ended during the phase (its figures are then null).
    running: alive(server.pid),
    cpu_cores: round(serverCpu[i].server_percent / 100, 2),
    rss_peak_mib: mib(peaks[i]),
    rss_steady_mib: mib(steady[i]),
    ...describeMemory(after[i]),
    terminal_clients: after[i].terminal_clients,
    terminal_sessions: after[i].terminal_sessions,
    slow_client_cutovers: after[i].terminal_slow_client_cutovers_total - before[i].terminal_slow_client_cutovers_total,
    upstream_errors: after[i].terminal_upstream_errors_total - before[i].terminal_upstream_errors_total,
    output_sent_mb_per_second: round(
      (after[i].terminal_output_bytes_total - before[i].terminal_output_bytes_total) / 1e6 / measured.seconds,
      2,
    ),
  }));
  snapshot(servers[0]);
  return {
    seconds: round(measured.seconds, 1),
    connections: measured.clients.length,
    open_at_the_end: measured.clients.filter((client) => client.open).length,
    dropped: measured.dropped,
    dropped_during_this_phase: measured.dropped_during,
    close_codes: measured.close_codes,
    delivered_full_speed_readers: throughput(fast, measured.seconds),
    ...(slow.length > 0
      ? { delivered_slow_readers: { ...throughput(slow, measured.seconds), reading_at_kb_per_second: SLOW_RATE / 1000 } }
      : {}),
    echo_one_typing_client: echoResult,
    servers: perServer,
    server_cpu_cores_total: round(
      perServer.reduce((sum, s) => sum + s.cpu_cores, 0),
      2,
    ),
    server_rss_peak_mib_max: Math.max(...perServer.map((s) => s.rss_peak_mib)),
    machine_busy_cores: round(machineCores, 2),
    load_generator_cpu_cores: round(measured.generator_cpu_percent / 100, 2),
  };
}

async function openClients(servers: BenchServer[], fleet: Fleet, ids: string[]): Promise<LoadClients> {
  const clients = new LoadClients();
  const connected = await clients.request(
    {
      type: 'connect',
      baseUrls: servers.map((server) => server.baseUrl),
      targets: ids.map((id) => ({ environmentId: id, token: fleet.ownerOf.get(id)!.token, clients: CLIENTS })),
      concurrency: 20,
      cols: COLS,
      rows: ROWS,
    },
    'connected',
  );
  log(`${connected.connected} connected, ${connected.failed} failed in ${round(connected.seconds, 1)} s ${connected.errors.join('; ')}`);
  if (connected.connected === 0) throw new Error(`no client connected: ${connected.errors.join('; ')}`);
  // Past every redraw: the clients read the producers' output only.
  await delay(2000);
  return clients;
}

async function typingClient(server: BenchServer, fleet: Fleet, id: string): Promise<WsTerminal> {
  let typer: WsTerminal | null = null;
  for (let attempt = 1; typer === null; attempt += 1) {
    // A terminal may not open within 15 s on a saturated machine: try again.
    typer = await WsTerminal.connect(server.baseUrl, id, fleet.ownerOf.get(id)!.token).catch((error: unknown) => {
      if (attempt >= 3) throw error;
      return null;
    });
  }
  await quiet(typer, 500);
  await startCat(typer);
  return typer;
}

/** The load (all clients at full speed, then with slow readers) on `servers`, one replica or several. */
async function underLoad(
  servers: BenchServer[],
  fleet: Fleet,
  loaded: string[],
  echoId: string,
  producers: ProducerSwitch,
): Promise<Record<string, unknown>> {
  // The clients connect while the producers are idle (on a saturated machine, starting 200 tmux
  // clients takes minutes), then every producer prints.
  producers.set({ light: false, rest: false });
  const clients = await openClients(servers, fleet, loaded);
  const typer = await typingClient(servers[servers.length - 1], fleet, echoId);
  producers.set({ light: true, rest: true });
  await delay(3000);
  try {
    log(`${servers.length} replica(s): full-speed readers, ${SECONDS} s`);
    const full = await measurePhase({ clients, servers, typer }, 0);
    log(`${servers.length} replica(s): ${SLOW} slow readers per environment, ${SECONDS} s`);
    const slow = await measurePhase({ clients, servers, typer }, SLOW);
    await stopCat(typer);
    return { full_speed_readers: full, with_slow_readers: slow };
  } finally {
    producers.set({ light: false, rest: false });
    await typer.close();
    await clients.stop();
  }
}

export async function terminalLoad(ctx: BenchContext): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync('/tmp/dpl-');
  const db = { mongodbUri: ctx.mongodbUri, name: 'bench_load', dataDir };
  const serverEnv = {
    TRUSTED_PROXIES: 'loopback',
    DATA_DIR: dataDir,
    TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT: String(CLIENTS + 5),
    TERMINAL_MAX_CONNECTIONS_PER_USER: String(25 * (CLIENTS + 2)),
  };
  const weighed = weighInfrastructure(SERVER_NICE);
  const redis: TestRedis | null = REPLICAS.some((replicas) => replicas > 1) ? await startRedis() : null;
  let servers: BenchServer[] = [];
  let fleet: Fleet | null = null;
  const start = async (replicas: number): Promise<void> => {
    for (const server of servers) await stopServer(server);
    servers = [];
    const shared: Record<string, string> = replicas > 1 ? { REDIS_URL: redis!.url, REDIS_KEY_PREFIX: 'bench-load:' } : {};
    for (let i = 0; i < replicas; i += 1)
      servers.push(
        await startServer(ctx.mongodbUri, db.name, await freePort(), {
          ...serverEnv,
          ...shared,
          ...snapshotOptions(),
        }),
      );
  };
  const result: Record<string, unknown> = {
    method:
      `${ENVIRONMENTS} environments × ${CLIENTS} clients, each environment printing ${RATE / 1000} KB/s (80-byte lines, 20 bursts/s) at its shell; ` +
      `clients in their own process count the stream bytes of the output frames over ${SECONDS} s; one more client types at \`cat\` in an environment of its own`,
    scheduling: { bench_autogroup: weighed.applied, environments: 'an autogroup per tmux session (nice 0)' },
  };
  try {
    await start(REPLICAS[0] ?? 1);
    await delay(1000);
    result.server_fresh = {
      rss_mib: mib(await steadyRss(servers[0].pid)),
      ...describeMemory(await metrics(servers[0].baseUrl, MEMORY_SERIES)),
    };
    log(`creating ${ENVIRONMENTS + 1} environments`);
    const created = performance.now();
    fleet = await createFleet(servers[0].baseUrl, db, ENVIRONMENTS + 1, `bl${Date.now().toString(36)}`);
    result.create_to_all_running_seconds = round((performance.now() - created) / 1000, 1);
    const loaded = fleet.ids.slice(0, ENVIRONMENTS);
    const echoId = fleet.ids[ENVIRONMENTS];

    // Every producer starts idle; the light phase's print while their switch is on.
    const producers = new ProducerSwitch(dataDir);
    log(`starting ${ENVIRONMENTS} producers`);
    result.producers_running =
      (await startProducers(servers[0].baseUrl, fleet, loaded.slice(0, LIGHT), RATE, producers.light)) +
      (await startProducers(servers[0].baseUrl, fleet, loaded.slice(LIGHT), RATE, producers.rest));
    log(`light: ${LIGHT} environments × ${CLIENTS} clients`);
    const lightClients = await openClients(servers.slice(0, 1), fleet, loaded.slice(0, LIGHT));
    const lightTyper = await typingClient(servers[0], fleet, echoId);
    producers.set({ light: true, rest: false });
    await delay(3000);
    let light: Record<string, unknown>;
    try {
      light = await measurePhase({ clients: lightClients, servers: servers.slice(0, 1), typer: lightTyper }, 0);
      await stopCat(lightTyper);
    } finally {
      producers.set({ light: false, rest: false });
      await lightTyper.close();
      await lightClients.stop();
    }
    result.light = { environments: LIGHT, ...light };

    const lightP50 = (light.delivered_full_speed_readers as Record<string, number>).p50_kb_per_second;
    for (const replicas of REPLICAS) {
      if (servers.length !== replicas) {
        await start(replicas);
        for (const user of fleet.users) await login(servers[0].baseUrl, user);
      }
      const figures = await underLoad(servers, fleet, loaded, echoId, producers);
      const full = figures.full_speed_readers as Record<string, Record<string, number>>;
      const slow = figures.with_slow_readers as Record<string, unknown>;
      result[replicas === 1 ? 'one_replica' : `${replicas}_replicas`] = {
        ...(replicas > 1 ? { redis: true, clients_split: 'round-robin over the replicas' } : { redis: false }),
        ...figures,
        delivered_share: {
          of_light_p50: round(full.delivered_full_speed_readers.p50_kb_per_second / lightP50, 2),
          of_produced_p50: round(full.delivered_full_speed_readers.p50_kb_per_second / (RATE / 1000), 2),
          light_of_produced_p50: round(lightP50 / (RATE / 1000), 2),
        },
        targets: {
          rss_under_400_mb: [full, slow].every((phase) => (phase.server_rss_peak_mib_max as number) * 2 ** 20 < RSS_TARGET),
          cpu_under_one_core_per_server: [full, slow].every((phase) =>
            (phase.servers as { cpu_cores: number }[]).every((server) => server.cpu_cores < 1),
          ),
          none_dropped: (slow.dropped as number) === 0,
        },
      };
    }
    return result;
  } finally {
    if (fleet && servers.length > 0 && alive(servers[0].pid)) {
      log('deleting the environments');
      await deleteFleet(servers[0].baseUrl, fleet);
    }
    for (const server of servers) await stopServer(server);
    killTmuxServers(dataDir);
    await redis?.close();
    rmSync(dataDir, { recursive: true, force: true });
    weighed.restore();
  }
}
