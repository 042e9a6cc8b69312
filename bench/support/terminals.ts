import { closeSync, openSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { spawn as spawnPty, type IPty } from 'node-pty';
import { WebSocket } from 'ws';
import { percentile } from './load.js';
import { round } from './process-stats.js';

/**
 * Terminals the benches type into and read from: the server's terminal WebSocket, or a tmux client
 * in a pty (the floor); echo, bulk-output and quiet-wait measures that work on either.
 */

export const COLS = 100;
export const ROWS = 30;
export const ECHO_PACE_MS = 10;
const ECHO_TIMEOUT_MS = 2000;
export const BULK_BYTES = 64 * 1024 * 1024;
const BULK_TIMEOUT_MS = 180_000;
/** Printable characters that echo as themselves; consecutive keystrokes differ. */
const KEYS = 'kqwzxjvy';
// CSI, OSC, charset designation and two-character escapes.
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()*+][0-9A-Za-z]|[@-Z\\-_=>78])/g;

export type Listener = (text: string, at: number) => void;

/** What the echo, bulk and quiet helpers need from either side: a terminal to write to and read from. */
export interface Terminal {
  write(data: string): void;
  listen(listener: Listener): () => void;
  /** Time of the last output seen. */
  lastOutputAt: number;
}

export class WsTerminal implements Terminal {
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

export class PtyTerminal implements Terminal {
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
export async function quiet(terminal: Terminal, quietMs = 300, maxMs = 10_000): Promise<void> {
  const started = performance.now();
  for (;;) {
    const now = performance.now();
    if (now - Math.max(terminal.lastOutputAt, started) >= quietMs || now - started > maxMs) return;
    await delay(20);
  }
}

/** Resolves with the arrival time of the first output containing `needle` (escapes stripped). */
export function arrival(terminal: Terminal, needle: string, timeoutMs: number): Promise<number | null> {
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

export interface EchoResult {
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  samples: number;
  timeouts: number;
}

/** One printable keystroke at a time at a `cat` in canonical mode (the line discipline echoes it); the next after the echo plus a pause. */
export async function measureEcho(terminal: Terminal, samples: number): Promise<EchoResult> {
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
export async function startCat(terminal: Terminal): Promise<void> {
  terminal.write('\x03');
  await quiet(terminal, 200);
  terminal.write('cat\r');
  await quiet(terminal, 300);
}

export async function stopCat(terminal: Terminal): Promise<void> {
  terminal.write('\x15\x03');
  await quiet(terminal, 300);
}

export interface BulkResult {
  seconds: number;
  mb_per_second: number;
  bytes_received: number;
}

/** `cat file` then a sentinel line; time from Enter to the sentinel. MB/s counts the file's bytes. */
export async function measureBulk(
  terminal: Terminal,
  file: string,
  fileBytes: number,
  tag: string,
  received: () => number,
): Promise<BulkResult> {
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
export function writeBulkFile(path: string): number {
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
