import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { call, createEnvironment, login, pool, register, waitForPhase, type User } from '../support/api-client.js';
import { median, percentile } from '../support/load.js';
import {
  alive,
  childrenRss,
  cpuPercent,
  describeMemory,
  mib,
  round,
  rssBytes,
  sampleRss,
  settledMemory,
  stopServer,
} from '../support/process-stats.js';
import { killTmuxServers, setTeamPlan, startServer, type BenchServer } from '../support/server.js';
import {
  COLS,
  ECHO_PACE_MS,
  measureBulk,
  measureEcho,
  PtyTerminal,
  quiet,
  ROWS,
  startCat,
  stopCat,
  writeBulkFile,
  WsTerminal,
} from '../support/terminals.js';
import type { BenchContext } from '../context.js';

/**
 * The terminal hub against its floor: node-pty running a tmux client attached straight to the same
 * tmux session from this process, no server in between.
 *
 *   1. keystroke echo latency (1 client, and 100 clients on one session with one typing)
 *   2. bulk output (a 64 MiB `cat`) in MB/s, with the server's RSS growth
 *   3. time to first byte of an exact resume (`?resume=<offset>`)
 *   4. server memory per idle session and per idle connection (N environments × 5 clients)
 *
 *   BENCH_TERMINAL_IDLE_ENVIRONMENTS=200   environments of phase 4 (25 per team-plan user)
 *   BENCH_TERMINAL_ECHO_SAMPLES=500        keystrokes per echo measurement
 */

const ECHO_SAMPLES = Number(process.env.BENCH_TERMINAL_ECHO_SAMPLES ?? 500);
const CROWD = 100;
const RESUMES = 20;
const IDLE_ENVIRONMENTS = Number(process.env.BENCH_TERMINAL_IDLE_ENVIRONMENTS ?? 200);
const IDLE_CLIENTS_PER_ENVIRONMENT = 5;
const ENVIRONMENTS_PER_USER = 25; // the team plan

const log = (message: string): void => void process.stderr.write(`[bench] terminal: ${message}\n`);

// ---- the suite -----------------------------------------------------------------------------------

export async function terminal(ctx: BenchContext): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync('/tmp/dpt-');
  const dbName = 'bench_terminal';
  const serverEnv = {
    TRUSTED_PROXIES: 'loopback',
    DATA_DIR: dataDir,
    // Phase 1 puts 100 clients on one session; phase 4 gives a user 25 × 5 connections.
    TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT: String(CROWD + 10),
    TERMINAL_MAX_CONNECTIONS_PER_USER: String(ENVIRONMENTS_PER_USER * IDLE_CLIENTS_PER_ENVIRONMENT + CROWD),
  };
  const run = Date.now().toString(36);
  const users: User[] = [];
  const owners = new Map<User, string[]>();
  const ptys = new Set<PtyTerminal>();
  const sockets = new Set<WsTerminal>();
  let server: BenchServer | null = null;
  const result: Record<string, unknown> = {};
  const track = (terminal: WsTerminal): WsTerminal => {
    sockets.add(terminal);
    void terminal.closed.then(() => sockets.delete(terminal));
    return terminal;
  };

  try {
    server = await startServer(ctx.mongodbUri, dbName, ctx.port, serverEnv);
    const userCount = Math.max(1, Math.ceil(IDLE_ENVIRONMENTS / ENVIRONMENTS_PER_USER));
    for (let i = 0; i < userCount; i += 1) {
      const user = await register(server.baseUrl, `bt${run}u${i}`, `10.77.${i}.1`);
      users.push(user);
      owners.set(user, []);
    }
    await pool(users, 4, (user) => setTeamPlan(ctx.mongodbUri, dbName, dataDir, user.name));
    const owner = users[0];

    // ---- phases 1–3 on one environment ----
    const id = await createEnvironment(server.baseUrl, owner, 'Terminal bench');
    owners.get(owner)!.push(id);
    await waitForPhase(server.baseUrl, new Map([[owner, [id]]]), 'running', 60_000);
    const tmuxDir = join(dataDir, 'environments', id, 'tmux');
    const session = `devpocket_${id}`;
    const bulkFile = join(dataDir, 'bulk.txt');
    const bulkFileBytes = writeBulkFile(bulkFile);

    // The floor first, alone on the session.
    log('floor: echo');
    const floor = PtyTerminal.attach(tmuxDir, session);
    ptys.add(floor);
    await quiet(floor, 500);
    let floorBytes = 0;
    floor.listen((text) => void (floorBytes += Buffer.byteLength(text)));
    await startCat(floor);
    const floorEcho = await measureEcho(floor, ECHO_SAMPLES);
    await stopCat(floor);
    log('floor: bulk');
    const floorBulk = await measureBulk(floor, bulkFile, bulkFileBytes, `F${run}`, () => floorBytes);
    floor.write('clear\r');
    await quiet(floor, 300);
    await floor.kill();
    ptys.delete(floor);

    log('floor: attach');
    const floorAttach: number[] = [];
    for (let i = 0; i < RESUMES; i += 1) {
      const started = performance.now();
      const attached = PtyTerminal.attach(tmuxDir, session);
      ptys.add(attached);
      const first = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 5000);
        const stop = attached.listen((_text, at) => {
          clearTimeout(timer);
          stop();
          resolve(at);
        });
      });
      if (first !== null) floorAttach.push(first - started);
      await attached.kill();
      ptys.delete(attached);
    }

    // The server: one client.
    log('server: echo, 1 client');
    const typer = track(await WsTerminal.connect(server.baseUrl, id, owner.token));
    await quiet(typer, 500);
    await startCat(typer);
    const echo1 = await measureEcho(typer, ECHO_SAMPLES);

    // 100 clients, the last one to join types (it is served last in the fan-out).
    log(`server: echo, ${CROWD} clients`);
    const crowd = await pool(Array.from({ length: CROWD - 1 }), 10, async () =>
      track(await WsTerminal.connect(server!.baseUrl, id, owner.token)),
    );
    const crowdTyper = crowd[crowd.length - 1];
    await quiet(crowdTyper, 500);
    const echo100 = await measureEcho(crowdTyper, ECHO_SAMPLES);
    // The same with the first client typing (served first in the fan-out), for the spread.
    const echo100First = await measureEcho(typer, ECHO_SAMPLES);
    const crowdErrors = crowd.flatMap((client) => client.errors);
    await Promise.all(crowd.map((client) => client.close()));
    await stopCat(typer);

    log('server: bulk');
    const rssBeforeBulk = rssBytes(server.pid);
    const sampler = sampleRss(server.pid);
    const serverOffsetStart = typer.offset;
    const serverBulk = await measureBulk(typer, bulkFile, bulkFileBytes, `S${run}`, () => typer.offset - serverOffsetStart);
    const rssPeakBulk = sampler.stop();
    typer.write('clear\r');
    await quiet(typer, 300);

    log('server: resume');
    const resumeTtfb: number[] = [];
    const resumeFromNew: number[] = [];
    let exact = 0;
    for (let i = 0; i < RESUMES; i += 1) {
      const first = track(await WsTerminal.connect(server.baseUrl, id, owner.token));
      await quiet(first, 250); // past the first-message wait, the redraw arrives
      const offset = first.offset;
      await first.close();
      typer.write(`echo resume-${i}\r`);
      while (typer.offset <= offset) await delay(5);
      await quiet(typer, 100);
      const started = performance.now();
      const again = track(await WsTerminal.connect(server.baseUrl, id, owner.token, offset));
      const deadline = performance.now() + 5000;
      while (again.firstOutput === null && performance.now() < deadline) await delay(1);
      if (again.firstOutput !== null) {
        resumeTtfb.push(again.firstOutput.at - again.openedAt);
        resumeFromNew.push(again.firstOutput.at - started);
        if (again.firstOutput.begins === offset) exact += 1;
      }
      await again.close();
    }
    await typer.close();

    result.keystroke_echo = {
      method: `one printable key at a time at \`cat\` (canonical mode, the tty echoes), next ${ECHO_PACE_MS} ms after the echo; ${COLS}x${ROWS}`,
      floor_node_pty: floorEcho,
      server_1_client: echo1,
      [`server_${CROWD}_clients`]: {
        ...echo100,
        typer: 'the last client to join (served last in the fan-out)',
        errors: crowdErrors.length,
      },
      [`server_${CROWD}_clients_first_typing`]: { ...echo100First, typer: 'the first client (served first in the fan-out)' },
    };
    result.bulk_output = {
      method:
        'cat of a 64 MiB file (100-column lines) until a sentinel line; MB/s = file bytes / time (tmux renders, so far fewer bytes reach the client)',
      file_bytes: bulkFileBytes,
      floor_node_pty: floorBulk,
      server_1_client: {
        ...serverBulk,
        server_rss_before_mib: mib(rssBeforeBulk),
        server_rss_peak_mib: mib(rssPeakBulk),
        server_rss_growth_mib: mib(rssPeakBulk - rssBeforeBulk),
      },
    };
    result.resume_time_to_first_byte = {
      method:
        'reconnect with ?resume=<offset> after more output; from socket open to the first output frame (auth, lookup, welcome, replay)',
      runs: resumeTtfb.length,
      median_ms: round(median(resumeTtfb)),
      p90_ms: round(
        percentile(
          [...resumeTtfb].sort((a, b) => a - b),
          90,
        ),
      ),
      median_from_connect_ms: round(median(resumeFromNew)),
      exact_resumes: exact,
      floor_node_pty_attach_first_byte_median_ms: round(median(floorAttach)),
    };

    // Delete phase 1–3's environment before measuring idle memory on a fresh process.
    await call(server.baseUrl, owner.ip, 'DELETE', `/api/v1/environments/${id}`, owner.token);
    await waitForPhase(server.baseUrl, new Map([[owner, [id]]]), 'terminated', 60_000);
    owners.set(owner, []);
    rmSync(bulkFile, { force: true });

    // ---- phase 4: idle sessions, on a fresh server process ----
    await stopServer(server);
    server = null;
    // With an inspector on loopback, only to force full GCs before each memory reading.
    const inspectPort = ctx.port + 1;
    server = await startServer(ctx.mongodbUri, dbName, ctx.port, {
      ...serverEnv,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${inspectPort}`.trim(),
    });
    for (const user of users) await login(server.baseUrl, user);
    const memFresh = await settledMemory(server, inspectPort);
    log(`idle: creating ${IDLE_ENVIRONMENTS} environments`);
    const createStarted = performance.now();
    const slots = Array.from({ length: IDLE_ENVIRONMENTS }, (_, i) => users[Math.floor(i / ENVIRONMENTS_PER_USER)]);
    const ids = await pool(slots, 8, async (user, i) => {
      const created = await createEnvironment(server!.baseUrl, user, `Idle ${i}`);
      owners.get(user)!.push(created);
      return created;
    });
    await waitForPhase(server.baseUrl, owners, 'running', 300_000);
    const createSeconds = (performance.now() - createStarted) / 1000;
    const ownerOf = new Map(ids.map((envId, i) => [envId, slots[i]]));
    await delay(2000); // background startup steps finish
    const pid = server.pid;
    const mem0 = await settledMemory(server, inspectPort);

    log(`idle: 1 client on each of ${ids.length} environments`);
    /** Clients without any output 5 s after their welcome (the redraw should come ~150 ms after it). */
    const late: WsTerminal[] = [];
    const connectOne = async (envId: string): Promise<WsTerminal> => {
      const client = track(await WsTerminal.connect(server!.baseUrl, envId, ownerOf.get(envId)!.token));
      const deadline = performance.now() + 5000;
      while (client.firstOutput === null && performance.now() < deadline) await delay(20);
      if (client.firstOutput === null) late.push(client);
      return client;
    };
    const firstClients = await pool(ids, 20, connectOne);
    await delay(2000);
    const mem1 = await settledMemory(server, inspectPort);
    log(`idle: ${IDLE_CLIENTS_PER_ENVIRONMENT} clients on each`);
    const more = await pool(
      ids.flatMap((envId) => Array.from({ length: IDLE_CLIENTS_PER_ENVIRONMENT - 1 }, () => envId)),
      20,
      connectOne,
    );
    await delay(3000);
    const mem5 = await settledMemory(server, inspectPort);
    // Over more than one runtime poll interval (3 s): "idle" includes watching every environment.
    const idleCpu = await cpuPercent(pid, 6000);
    const upstreams = childrenRss(pid, (argv) => argv.includes('new-session') && argv.includes('-A'));
    const tmuxServers = childrenRss(pid, (argv) => argv.includes('-D'));
    const idleClients = [...firstClients, ...more];
    const connections = idleClients.filter((client) => client.ws.readyState === WebSocket.OPEN).length;
    const lateFirst = late.filter((client) => firstClients.includes(client)).length;
    const neverOutput = idleClients.filter((client) => client.firstOutput === null).length;
    await Promise.all(idleClients.map((client) => client.close()));

    const sessions = ids.length;
    const extra = Math.max(1, connections - sessions);
    const perSession = (mem1.rss - mem0.rss) / sessions; // upstream + the first client
    const perExtraConnection = (mem5.rss - mem1.rss) / extra;
    const perConnection = (mem5.rss - mem0.rss) / Math.max(1, connections);
    // 1000 connections as 200 sessions × 5 clients.
    const thousandSessions = 1000 / IDLE_CLIENTS_PER_ENVIRONMENT;
    const thousand = mem0.rss + thousandSessions * perSession + (1000 - thousandSessions) * perExtraConnection;
    result.idle_memory = {
      method:
        'N environments, then 1 client on each, then 5 on each; memory read after a forced full GC (inspector) as the median of 5 RSS readings',
      environments: sessions,
      connections,
      forced_gc: mem0.gc && mem1.gc && mem5.gc,
      clients_without_output_5s_after_welcome: { first_of_their_session: lateFirst, joining: late.length - lateFirst },
      clients_without_output_at_the_end: neverOutput,
      create_to_all_running_seconds: round(createSeconds, 1),
      server_fresh: describeMemory(memFresh),
      server_with_environments_no_terminals: {
        ...describeMemory(mem0),
        rss_per_environment_kib: round((mem0.rss - memFresh.rss) / 1024 / sessions, 1),
        heap_per_environment_kib: round((mem0.heapUsed - memFresh.heapUsed) / 1024 / sessions, 1),
      },
      server_1_client_each: describeMemory(mem1),
      server_all_connected: describeMemory(mem5),
      rss_growth_from_terminals_mib: mib(mem5.rss - mem0.rss),
      per_session_kib: { rss: round(perSession / 1024, 1), heap: round((mem1.heapUsed - mem0.heapUsed) / 1024 / sessions, 1) },
      per_extra_connection_kib: {
        rss: round(perExtraConnection / 1024, 1),
        heap: round((mem5.heapUsed - mem1.heapUsed) / 1024 / extra, 1),
      },
      per_connection_overall_kib: {
        rss: round(perConnection / 1024, 1),
        heap: round((mem5.heapUsed - mem0.heapUsed) / 1024 / Math.max(1, connections), 1),
      },
      extrapolated_1000_connections_mib: mib(thousand),
      cpu_while_idle_6s: idleCpu,
      outside_the_server_process: {
        upstream_tmux_clients: { processes: upstreams.count, rss_mib: mib(upstreams.bytes) },
        tmux_servers: { processes: tmuxServers.count, rss_mib: mib(tmuxServers.bytes) },
      },
    };

    log('idle: deleting');
    await pool(ids, 8, (envId) =>
      call(server!.baseUrl, ownerOf.get(envId)!.ip, 'DELETE', `/api/v1/environments/${envId}`, ownerOf.get(envId)!.token),
    );
    await waitForPhase(server.baseUrl, owners, 'terminated', 300_000);
    for (const user of users) owners.set(user, []);

    const p50Target = floorEcho.p50_ms + 0.5;
    const p99Target = 3 * floorEcho.p99_ms;
    const crowdTarget = 2 * echo1.p99_ms;
    const bulkTarget = 0.6 * floorBulk.mb_per_second;
    const rssGrowth = rssPeakBulk - rssBeforeBulk;
    result.targets = {
      echo_p50: { pass: echo1.p50_ms <= p50Target, value_ms: echo1.p50_ms, limit_ms: round(p50Target) },
      echo_p99: { pass: echo1.p99_ms <= p99Target, value_ms: echo1.p99_ms, limit_ms: round(p99Target) },
      echo_100_clients_p99: { pass: echo100.p99_ms <= crowdTarget, value_ms: echo100.p99_ms, limit_ms: round(crowdTarget) },
      bulk: {
        pass: serverBulk.mb_per_second >= bulkTarget && rssGrowth < 64 * 2 ** 20,
        mb_per_second: serverBulk.mb_per_second,
        limit_mb_per_second: round(bulkTarget, 1),
        rss_growth_mib: mib(rssGrowth),
        limit_rss_growth_mib: 64,
      },
      idle_1000_connections: {
        pass: thousand < 400e6,
        rss_mb: round(thousand / 1e6, 1),
        limit_mb: 400,
        measured_directly: connections >= 1000,
      },
    };
    return result;
  } finally {
    for (const pty of ptys) await pty.kill();
    await Promise.race([Promise.all([...sockets].map((client) => client.close())), delay(5000)]);
    if (server && alive(server.pid)) {
      // Best effort: anything still owned is deleted.
      for (const [user, ids] of owners) {
        for (const envId of ids)
          await call(server.baseUrl, user.ip, 'DELETE', `/api/v1/environments/${envId}`, user.token).catch(() => undefined);
      }
      await waitForPhase(server.baseUrl, owners, 'terminated', 120_000).catch((error: unknown) => log(String(error)));
      await stopServer(server);
    }
    // Any tmux server left behind (a failed run) goes with its directory.
    killTmuxServers(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
