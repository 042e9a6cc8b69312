/**
 * A bad link you can reproduce, for tests and benchmarks: a TCP proxy on 127.0.0.1, in a process
 * of its own, between a client and the API server, with delay and jitter, bandwidth, loss (as the
 * stall of a TCP retransmission), blackholes, resets and roams, deterministic from a seed.
 *
 * ```ts
 * const link = await FlakyLink.start({ target: server.port, seed: 42, ...bothWays({ delayMs: 125, jitterMs: 25 }) });
 * const ws = new WebSocket(link.url('/api/v1/ws/terminal/…', 'ws'));
 * await link.blackhole();  // nothing flows, nothing closes
 * await link.heal();
 * const port = await link.roam(); // every connection reset, a new port; the old one refuses
 * await link.close();
 * ```
 *
 * The model is in ./link-model.ts, the proxy in ./proxy.ts (./pipe.ts per direction), the process
 * in ./link-process.ts; docs/development.md ("A bad link for tests and benchmarks") says what is
 * modelled and what the seed guarantees.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import type { DirectionParams, LinkParams, LinkSettings } from './link-model.js';
import type { Command, Reply, Results } from './protocol.js';
import type { LinkStats, Located } from './proxy.js';

export type { DirectionParams, LinkParams, LinkSettings } from './link-model.js';
export type { ConnectionTrace, LinkStats, Located, PacketTrace } from './proxy.js';

export interface FlakyLinkOptions extends LinkSettings {
  /** The server: a port on 127.0.0.1, `{ host, port }`, or a URL such as `http://127.0.0.1:8000`. */
  target: number | { host?: string; port: number } | string;
  /** Seeds every jitter and loss decision. */
  seed: number;
  /** The first listening port (default: a free one). */
  port?: number;
}

/** The same parameters for both directions: `bothWays({ delayMs: 125, jitterMs: 25 })` is a 250 ± 50 ms round trip. */
export function bothWays(params: Partial<DirectionParams>): Pick<LinkSettings, 'up' | 'down'> {
  return { up: { ...params }, down: { ...params } };
}

const ENTRY = join(import.meta.dirname, 'link-process.ts');
const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
const REPLY_TIMEOUT_MS = 30_000;

interface Waiting {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

export class FlakyLink {
  private nextId = 0;
  private readonly waiting = new Map<number, Waiting>();
  private stderr = '';
  private exited = false;
  private readonly exit: Promise<void>;
  private currentPort = 0;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => this.receive(line));
    this.exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exited = true;
        const error = new Error(`flaky link process exited (${code ?? signal})${this.stderr ? `:\n${this.stderr}` : ''}`);
        for (const waiting of this.waiting.values()) waiting.reject(error);
        this.waiting.clear();
        resolve();
      }),
    );
  }

  /** Spawns the proxy process and resolves once it listens. */
  static async start(options: FlakyLinkOptions): Promise<FlakyLink> {
    const { target, seed, port, ...link } = options;
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY], { cwd: REPO_ROOT, stdio: 'pipe' });
    const flakyLink = new FlakyLink(child);
    try {
      flakyLink.currentPort = await flakyLink.request({ command: 'start', options: { target: parseTarget(target), seed, port, link } });
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    return flakyLink;
  }

  /** The port clients connect to now (a roam changes it). */
  get port(): number {
    return this.currentPort;
  }

  /** The process's pid (for CPU figures in benchmarks). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** `http://127.0.0.1:<port><path>`, or `ws://…` with protocol 'ws'. */
  url(path = '', protocol: 'http' | 'ws' = 'http'): string {
    return `${protocol}://127.0.0.1:${this.currentPort}${path}`;
  }

  /** New parameters, for bytes that arrive from now on; resolves with all of them. */
  set(settings: LinkSettings): Promise<LinkParams> {
    return this.request({ command: 'set', settings });
  }

  /** Stops forwarding in both directions, silently: nothing is delivered, nothing is closed. */
  async blackhole(): Promise<void> {
    await this.request({ command: 'blackhole' });
  }

  /** Ends a blackhole: what was held is delivered, no earlier than a one-way delay from now. */
  async heal(): Promise<void> {
    await this.request({ command: 'heal' });
  }

  /** An RST to both sides of every open connection; resolves with how many. */
  reset(): Promise<number> {
    return this.request({ command: 'reset' });
  }

  /** Resets every connection, listens on a new port, closes the old one and ends a blackhole; resolves with the new port. */
  async roam(): Promise<number> {
    this.currentPort = await this.request({ command: 'roam' });
    return this.currentPort;
  }

  stats(): Promise<LinkStats> {
    return this.request({ command: 'stats' });
  }

  /**
   * The traced packet (stats().recent) that carries the last byte of `text` in a direction, most
   * recent connection first, with the connection's number; null when none does.
   */
  locate(direction: 'up' | 'down', text: string): Promise<Located | null> {
    return this.request({ command: 'locate', direction, text });
  }

  /** Closes every connection and the port, and ends the process. Idempotent. */
  async close(): Promise<void> {
    if (!this.exited) {
      await this.request({ command: 'close' }).catch(() => undefined);
      this.child.stdin.end();
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exit;
    clearTimeout(timer);
  }

  private request<C extends Command>(command: C): Promise<Results[C['command']]> {
    if (this.exited) return Promise.reject(new Error(`flaky link process has exited${this.stderr ? `:\n${this.stderr}` : ''}`));
    const id = this.nextId++;
    return new Promise<Results[C['command']]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`flaky link: no answer to ${command.command} within ${REPLY_TIMEOUT_MS} ms`));
      }, REPLY_TIMEOUT_MS);
      this.waiting.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result as Results[C['command']]);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  }

  private receive(line: string): void {
    if (line.trim() === '') return;
    const reply = JSON.parse(line) as Reply;
    const waiting = this.waiting.get(reply.id);
    if (!waiting) return;
    this.waiting.delete(reply.id);
    if ('error' in reply) waiting.reject(new Error(reply.error));
    else waiting.resolve(reply.result);
  }
}

function parseTarget(target: FlakyLinkOptions['target']): { host: string; port: number } {
  if (typeof target === 'number') return { host: '127.0.0.1', port: target };
  if (typeof target === 'string') {
    const url = new URL(target);
    const port = Number(url.port || (url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80));
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
  }
  return { host: target.host ?? '127.0.0.1', port: target.port };
}
