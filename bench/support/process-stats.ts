import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { median } from './load.js';
import type { BenchServer } from './server.js';

/**
 * A bench server's process from outside: RSS (its own and its children's), CPU over a window,
 * V8 heap from its metrics, a full GC through its inspector, and stopping it whatever its state.
 */

const log = (message: string): void => void process.stderr.write(`[bench] ${message}\n`);

export const round = (value: number, digits = 2): number =>
  Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : value;
export const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);

/** A process's RSS; NaN once it is gone. */
export function rssBytes(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return Number.NaN;
  }
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** Summed RSS of the direct children of `pid` whose command line matches, and how many. */
export function childrenRss(pid: number, match: (argv: string[]) => boolean): { count: number; bytes: number } {
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

export const CLOCK_TICKS_PER_SECOND = 100;

/** CPU of a process over `ms`, in % of one core: its own, and that of the children it reaped meanwhile. */
export async function cpuPercent(pid: number, ms: number): Promise<{ server_percent: number; reaped_children_percent: number }> {
  const ticks = (): number[] => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      // The process is gone (it exited or crashed): no figure, rather than ending the whole run.
      return [Number.NaN, Number.NaN];
    }
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
export function sampleRss(pid: number): { stop(): number } {
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
export async function steadyRss(pid: number, samples = 5, everyMs = 200): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    values.push(rssBytes(pid));
    await delay(everyMs);
  }
  return median(values);
}

/** The server's V8 heap in use and its external (Buffer) memory, from its Prometheus endpoint, in bytes. */
export async function heapBytes(baseUrl: string): Promise<{ heapUsed: number; external: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { heapUsed: value('nodejs_heap_size_used_bytes'), external: value('nodejs_external_memory_bytes') };
}

/** A full garbage collection in the server, through its inspector (HeapProfiler.collectGarbage); false when unavailable. */
export async function collectGarbage(inspectPort: number): Promise<boolean> {
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

export interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  gc: boolean;
}

/** The server's memory once settled: after a full GC (when its inspector answers), the median of RSS readings, and its heap. */
export async function settledMemory(server: BenchServer, inspectPort: number): Promise<Memory> {
  const gc = await collectGarbage(inspectPort);
  await delay(500);
  const rss = await steadyRss(server.pid);
  return { rss, ...(await heapBytes(server.baseUrl)), gc };
}

export const describeMemory = (memory: Memory): Record<string, number> => ({
  rss_mib: mib(memory.rss),
  heap_used_mib: mib(memory.heapUsed),
  external_mib: mib(memory.external),
});

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the server unless it is already gone (then stop() would wait for an exit that already happened). */
export async function stopServer(server: BenchServer): Promise<void> {
  if (!alive(server.pid)) {
    log(`the server (pid ${server.pid}) had already exited`);
    return;
  }
  await Promise.race([server.stop(), delay(15_000)]);
  if (alive(server.pid)) process.kill(server.pid, 'SIGKILL');
}
