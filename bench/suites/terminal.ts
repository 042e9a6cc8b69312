import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { spawn as spawnPty, type IPty } from 'node-pty';
import { WebSocket } from 'ws';
import { median, percentile } from '../support/load.js';
import { setTeamPlan, startServer, type BenchServer } from '../support/server.js';
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

const COLS = 100;
const ROWS = 30;
const ECHO_SAMPLES = Number(process.env.BENCH_TERMINAL_ECHO_SAMPLES ?? 500);
const ECHO_PACE_MS = 10;
const ECHO_TIMEOUT_MS = 2000;
const CROWD = 100;
const BULK_BYTES = 64 * 1024 * 1024;
const BULK_TIMEOUT_MS = 180_000;
const RESUMES = 20;
const IDLE_ENVIRONMENTS = Number(process.env.BENCH_TERMINAL_IDLE_ENVIRONMENTS ?? 200);
const IDLE_CLIENTS_PER_ENVIRONMENT = 5;
const ENVIRONMENTS_PER_USER = 25; // the team plan
const PASSWORD = 'Bench1Password';
/** Printable characters that echo as themselves; consecutive keystrokes differ. */
const KEYS = 'kqwzxjvy';
// CSI, OSC, charset designation and two-character escapes.
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()*+][0-9A-Za-z]|[@-Z\\-_=>78])/g;

const log = (message: string): void => void process.stderr.write(`[bench] terminal: ${message}\n`);
const round = (value: number, digits = 2): number => (Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : value);
const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);

// ---- process memory ------------------------------------------------------------------------------

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** Summed RSS of the direct children of `pid` whose command line matches, and how many. */
function childrenRss(pid: number, match: (argv: string[]) => boolean): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid || !match(readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'))) continue;
      bytes += rssBytes(Number(entry));
      count += 1;
    } catch {
      // exited meanwhile
    }
  }
  return { count, bytes };
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU of a process over `ms`, in % of one core: its own, and that of the children it reaped meanwhile. */
async function cpuPercent(pid: number, ms: number): Promise<{ server_percent: number; reaped_children_percent: number }> {
  const ticks = (): number[] => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(fields[11]) + Number(fields[12]), Number(fields[13]) + Number(fields[14])];
  };
  const before = ticks();
  const started = performance.now();
  await delay(ms);
  const after = ticks();
  const seconds = (performance.now() - started) / 1000;
  const percent = (i: number): number => round(((after[i] - before[i]) / CLOCK_TICKS_PER_SECOND / seconds) * 100, 1);
  return { server_percent: percent(0), reaped_children_percent: percent(1) };
}

/** Samples a process's RSS every 50 ms; `stop()` returns the peak. */
function sampleRss(pid: number): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      // the process is gone
    }
  }, 50);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

/** Median RSS over `samples` readings `everyMs` apart (one reading can catch a GC in flight). */
async function steadyRss(pid: number, samples = 5, everyMs = 200): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    values.push(rssBytes(pid));
    await delay(everyMs);
  }
  return median(values);
}

/** The server's V8 heap in use and its external (Buffer) memory, from its Prometheus endpoint, in bytes. */
async function heapBytes(baseUrl: string): Promise<{ heapUsed: number; external: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { heapUsed: value('nodejs_heap_size_used_bytes'), external: value('nodejs_external_memory_bytes') };
}

/** A full garbage collection in the server, through its inspector (HeapProfiler.collectGarbage); false when unavailable. */
async function collectGarbage(inspectPort: number): Promise<boolean> {
  try {
    const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    for (let id = 1; id <= 2; id += 1) {
      const answered = new Promise<void>((resolve) => {
        const onMessage = (raw: Buffer): void => {
          if ((JSON.parse(raw.toString('utf8')) as { id?: number }).id !== id) return;
          ws.off('message', onMessage);
          resolve();
        };
        ws.on('message', onMessage);
      });
      ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      await Promise.race([answered, delay(10_000)]);
    }
    ws.close();
    return true;
  } catch {
    return false;
  }
}

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  gc: boolean;
}

/** The server's memory once settled: after a full GC (when its inspector answers), the median of RSS readings, and its heap. */
async function settledMemory(server: BenchServer, inspectPort: number): Promise<Memory> {
  const gc = await collectGarbage(inspectPort);
  await delay(500);
  const rss = await steadyRss(server.pid);
  return { rss, ...(await heapBytes(server.baseUrl)), gc };
}

const describeMemory = (memory: Memory): Record<string, number> => ({
  rss_mib: mib(memory.rss),
  heap_used_mib: mib(memory.heapUsed),
  external_mib: mib(memory.external),
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the server unless it is already gone (then stop() would wait for an exit that already happened). */
async function stopServer(server: BenchServer): Promise<void> {
  if (!alive(server.pid)) {
    log(`the server (pid ${server.pid}) had already exited`);
    return;
  }
  await Promise.race([server.stop(), delay(15_000)]);
  if (alive(server.pid)) process.kill(server.pid, 'SIGKILL');
}

// ---- HTTP API ------------------------------------------------------------------------------------

interface EnvironmentBody {
  id: string;
  phase: string;
}

interface User {
  name: string;
  token: string;
  /** Every request of this user comes from its own address (TRUSTED_PROXIES=loopback). */
  ip: string;
}

async function call<T>(
  baseUrl: string,
  ip: string,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-forwarded-for': ip };
  if (token) headers.authorization = `Bearer ${token}`;
  for (;;) {
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 429) {
      // Respect the limiter rather than fail: wait as told and try again.
      const retry = Number(res.headers.get('retry-after') ?? 1);
      await res.arrayBuffer();
      log(`429 on ${method} ${path}; waiting ${retry} s`);
      await delay(Math.max(1, retry) * 1000);
      continue;
    }
    return { status: res.status, body: (await res.json()) as T };
  }
}

async function register(baseUrl: string, name: string, ip: string): Promise<User> {
  const res = await call<{ access_token: string }>(baseUrl, ip, 'POST', '/api/v1/auth/register', null, {
    username: name,
    email: `${name}@bench.example`,
    password: PASSWORD,
  });
  if (res.status !== 201) throw new Error(`register ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return { name, token: res.body.access_token, ip };
}

async function login(baseUrl: string, user: User): Promise<void> {
  const res = await call<{ access_token: string }>(baseUrl, user.ip, 'POST', '/api/v1/auth/login', null, {
    username_or_email: user.name,
    password: PASSWORD,
  });
  if (res.status !== 200 && res.status !== 201) throw new Error(`login ${user.name}: ${res.status} ${JSON.stringify(res.body)}`);
  user.token = res.body.access_token;
}

async function createEnvironment(baseUrl: string, user: User, name: string): Promise<string> {
  const res = await call<EnvironmentBody>(baseUrl, user.ip, 'POST', '/api/v1/environments', user.token, { name, template: 'debian' });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/** Polls each user's list until every id is in `phase`. */
async function waitForPhase(baseUrl: string, owners: Map<User, string[]>, phase: string, timeoutMs: number): Promise<void> {
  const started = performance.now();
  for (const [user, ids] of owners) {
    const wanted = new Set(ids);
    for (;;) {
      const res = await call<EnvironmentBody[]>(baseUrl, user.ip, 'GET', '/api/v1/environments', user.token);
      const found = res.body.filter((environment) => wanted.has(environment.id));
      const failed = found.find((environment) => environment.phase === 'error');
      if (failed && phase !== 'terminated') throw new Error(`environment ${failed.id} failed: ${JSON.stringify(failed)}`);
      if (found.length === wanted.size && found.every((environment) => environment.phase === phase)) break;
      if (performance.now() - started > timeoutMs) {
        throw new Error(`environments not ${phase} after ${timeoutMs} ms: ${JSON.stringify(found.filter((e) => e.phase !== phase))}`);
      }
      await delay(200);
    }
  }
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
async function pool<T, R>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index], index);
      }
    }),
  );
  return results;
}

// ---- terminal clients ----------------------------------------------------------------------------

type Listener = (text: string, at: number) => void;

/** What the echo, bulk and quiet helpers need from either side: a terminal to write to and read from. */
interface Terminal {
  write(data: string): void;
  listen(listener: Listener): () => void;
  /** Time of the last output seen. */
  lastOutputAt: number;
}

class WsTerminal implements Terminal {
  readonly listeners = new Set<Listener>();
  lastOutputAt = 0;
  /** Session offset after the last output frame. */
  offset = 0;
  openedAt = 0;
  firstOutput: { at: number; begins: number } | null = null;
  welcome: Record<string, unknown> | null = null;
  errors: string[] = [];
  readonly closed: Promise<void>;
  private welcomed!: () => void;
  readonly welcomePromise: Promise<void>;

  constructor(readonly ws: WebSocket) {
    this.welcomePromise = new Promise((resolve) => (this.welcomed = resolve));
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (raw: Buffer) => {
      const at = performance.now();
      const frame = JSON.parse(raw.toString('utf8')) as { type: string; data?: string; offset?: number; message?: string };
      if (frame.type === 'output' && typeof frame.data === 'string' && typeof frame.offset === 'number') {
        this.firstOutput ??= { at, begins: frame.offset - Buffer.byteLength(frame.data) };
        this.offset = frame.offset;
        this.lastOutputAt = at;
        for (const listener of this.listeners) listener(frame.data, at);
      } else if (frame.type === 'welcome') {
        this.welcome = frame;
        this.welcomed();
      } else if (frame.type === 'error') {
        this.errors.push(frame.message ?? '');
      }
    });
  }

  static async connect(baseUrl: string, id: string, token: string, resume?: number): Promise<WsTerminal> {
    const query = new URLSearchParams({ token, cols: String(COLS), rows: String(ROWS) });
    if (resume !== undefined) query.set('resume', String(resume));
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v1/ws/terminal/${id}?${query.toString()}`, {
      perMessageDeflate: false,
    });
    const terminal = new WsTerminal(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        terminal.openedAt = performance.now();
        resolve();
      });
      ws.once('error', reject);
      ws.once('close', (code, reason) => reject(new Error(`closed before open: ${code} ${reason.toString()}`)));
    });
    await Promise.race([
      terminal.welcomePromise,
      terminal.closed.then(() => {
        throw new Error(`closed before welcome: ${terminal.errors.join('; ')}`);
      }),
      delay(15_000).then(() => {
        throw new Error('no welcome within 15 s');
      }),
    ]);
    return terminal;
  }

  write(data: string): void {
    this.ws.send(JSON.stringify({ type: 'input', data }));
  }

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    await this.closed;
  }
}

class PtyTerminal implements Terminal {
  readonly listeners = new Set<Listener>();
  lastOutputAt = 0;
  readonly exited: Promise<void>;

  constructor(readonly pty: IPty) {
    pty.onData((data) => {
      const at = performance.now();
      this.lastOutputAt = at;
      for (const listener of this.listeners) listener(data, at);
    });
    this.exited = new Promise((resolve) => pty.onExit(() => resolve()));
  }

  /** A tmux client on the environment's own tmux server, attached to its session. */
  static attach(tmuxDir: string, session: string): PtyTerminal {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env))
      if (value !== undefined && key !== 'TMUX' && key !== 'TMUX_PANE') env[key] = value;
    return new PtyTerminal(
      spawnPty('tmux', ['new-session', '-A', '-s', session], {
        name: 'xterm-256color',
        cols: COLS,
        rows: ROWS,
        cwd: tmuxDir,
        env: { ...env, TMUX_TMPDIR: tmuxDir, TERM: 'xterm-256color' },
      }),
    );
  }

  write(data: string): void {
    this.pty.write(data);
  }

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async kill(): Promise<void> {
    try {
      this.pty.kill();
    } catch {
      // already gone
    }
    await Promise.race([this.exited, delay(2000)]);
  }
}

/** Waits until the terminal has been silent for `quietMs` (at most `maxMs`). */
async function quiet(terminal: Terminal, quietMs = 300, maxMs = 10_000): Promise<void> {
  const started = performance.now();
  for (;;) {
    const now = performance.now();
    if (now - Math.max(terminal.lastOutputAt, started) >= quietMs || now - started > maxMs) return;
    await delay(20);
  }
}

/** Resolves with the arrival time of the first output containing `needle` (escapes stripped). */
function arrival(terminal: Terminal, needle: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stop();
      resolve(null);
    }, timeoutMs);
    const stop = terminal.listen((text, at) => {
      if (!text.replace(ESCAPES, '').includes(needle)) return;
      clearTimeout(timer);
      stop();
      resolve(at);
    });
  });
}

interface EchoResult {
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  samples: number;
  timeouts: number;
}

/** One printable keystroke at a time at a `cat` in canonical mode (the line discipline echoes it); the next after the echo plus a pause. */
async function measureEcho(terminal: Terminal, samples: number): Promise<EchoResult> {
  const latencies: number[] = [];
  let timeouts = 0;
  for (let i = 0; i < samples; i += 1) {
    const key = KEYS[i % KEYS.length];
    const echoed = arrival(terminal, key, ECHO_TIMEOUT_MS);
    const sent = performance.now();
    terminal.write(key);
    const at = await echoed;
    if (at === null) timeouts += 1;
    else latencies.push(at - sent);
    // Erase the line now and then, far below the line discipline's 4095-character limit.
    if (i % 1000 === 999) {
      terminal.write('\x15');
      await quiet(terminal, 100);
    }
    await delay(ECHO_PACE_MS);
  }
  terminal.write('\x15'); // erase the typed line
  await quiet(terminal, 200);
  latencies.sort((a, b) => a - b);
  return {
    p50_ms: round(percentile(latencies, 50)),
    p90_ms: round(percentile(latencies, 90)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(percentile(latencies, 100)),
    samples: latencies.length,
    timeouts,
  };
}

/** Starts `cat` at the shell prompt (a fresh line first) and waits for it to settle. */
async function startCat(terminal: Terminal): Promise<void> {
  terminal.write('\x03');
  await quiet(terminal, 200);
  terminal.write('cat\r');
  await quiet(terminal, 300);
}

async function stopCat(terminal: Terminal): Promise<void> {
  terminal.write('\x15\x03');
  await quiet(terminal, 300);
}

interface BulkResult {
  seconds: number;
  mb_per_second: number;
  bytes_received: number;
}

/** `cat file` then a sentinel line; time from Enter to the sentinel. MB/s counts the file's bytes. */
async function measureBulk(terminal: Terminal, file: string, fileBytes: number, tag: string, received: () => number): Promise<BulkResult> {
  const sentinel = `BULK_${tag}`;
  let tail = '';
  const done = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`bulk: no sentinel after ${BULK_TIMEOUT_MS} ms`));
    }, BULK_TIMEOUT_MS);
    const stop = terminal.listen((text, at) => {
      const window = tail + text;
      tail = window.slice(-64);
      if (!window.includes(sentinel)) return;
      clearTimeout(timer);
      stop();
      resolve(at);
    });
  });
  const before = received();
  const started = performance.now();
  // The echoed command line never contains the sentinel itself (printf joins its halves).
  terminal.write(`cat ${file}; printf '%s_%s\\n' BULK ${tag}\r`);
  const finished = await done;
  const seconds = (finished - started) / 1000;
  return { seconds: round(seconds), mb_per_second: round(fileBytes / 1e6 / seconds, 1), bytes_received: received() - before };
}

/** 64 MiB of 'a' in lines of 100 (as `head -c 67108864 /dev/zero | tr '\0' 'a' | fold -w 100`). */
function writeBulkFile(path: string): number {
  const line = `${'a'.repeat(100)}\n`;
  const block = Buffer.from(line.repeat(10_000));
  const fd = openSync(path, 'w');
  let written = 0;
  let payload = 0;
  try {
    while (payload + 10_000 * 100 <= BULK_BYTES) {
      writeSync(fd, block);
      written += block.length;
      payload += 10_000 * 100;
    }
    const rest = BULK_BYTES - payload;
    const lines = Math.floor(rest / 100);
    let tail = line.repeat(lines);
    if (rest % 100 > 0) tail += `${'a'.repeat(rest % 100)}\n`;
    written += writeSync(fd, tail);
  } finally {
    closeSync(fd);
  }
  return written;
}

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
    const root = join(dataDir, 'environments');
    if (existsSync(root)) {
      for (const envId of readdirSync(root)) {
        const tmuxRoot = join(root, envId, 'tmux');
        if (!existsSync(tmuxRoot)) continue;
        for (const userDir of readdirSync(tmuxRoot).filter((name) => name.startsWith('tmux-'))) {
          try {
            execFileSync('tmux', ['-N', '-S', join(tmuxRoot, userDir, 'default'), 'kill-server'], { stdio: 'ignore' });
          } catch {
            // not running
          }
        }
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}
