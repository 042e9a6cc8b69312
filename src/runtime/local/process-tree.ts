import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { mapLimited } from '../../common/async/map-limited.js';

/**
 * Reading the host's process table from /proc (Linux). The local runtime finds an environment's
 * processes by the marker every one of them inherits in its environment
 * (`DEVPOCKET_ENVIRONMENT_ID=<id>`), plus their descendants (which catches a child started with
 * an emptied environment while its parent lives).
 */

/** Clock ticks per second of /proc/<pid>/stat times: USER_HZ, 100 on every Linux architecture in use. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** One-letter state (R, S, D, Z, …). */
  state: string;
  /** Start time after boot, in clock ticks: with the pid, identifies one process across pid reuse. */
  startTime: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
}

/** Parses /proc/<pid>/stat; the command name (field 2) may contain spaces and parentheses. */
export function parseStat(text: string): ProcessInfo | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open === -1 || close === -1) return null;
  const pid = Number(text.slice(0, open).trim());
  // Fields after the name start with field 3 (state): field n is at index n - 3.
  const fields = text
    .slice(close + 2)
    .trim()
    .split(' ');
  const state = fields[0] ?? '?';
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const startTime = Number(fields[19]);
  if (![pid, ppid, utime, stime, startTime].every(Number.isFinite)) return null;
  return { pid, ppid, state, startTime, cpuTicks: utime + stime };
}

/**
 * Files of /proc read at once by one scan. A host runs thousands of processes (a few per
 * environment): reading them all at once took that many descriptors per scan, and destroys running
 * side by side under load ran the server out of them (EMFILE, in its sockets' accepts too).
 */
const PROC_READS_IN_FLIGHT = 32;

async function pids(): Promise<number[]> {
  const names = await readdir('/proc');
  return names.filter((name) => /^\d+$/.test(name)).map(Number);
}

export async function readProcess(pid: number): Promise<ProcessInfo | null> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Every live process currently visible in /proc (zombies, already dead, are left out). */
export async function processTable(): Promise<Map<number, ProcessInfo>> {
  const table = new Map<number, ProcessInfo>();
  const infos = await mapLimited(await pids(), PROC_READS_IN_FLIGHT, readProcess);
  for (const info of infos) if (info && info.state !== 'Z' && info.state !== 'X') table.set(info.pid, info);
  return table;
}

/** `roots` and all their descendants that are in `table`. */
export function withDescendants(table: Map<number, ProcessInfo>, roots: Iterable<number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const info of table.values()) {
    const siblings = children.get(info.ppid);
    if (siblings) siblings.push(info.pid);
    else children.set(info.ppid, [info.pid]);
  }
  const found = new Set<number>();
  const queue = [...roots].filter((pid) => table.has(pid));
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    if (found.has(pid)) continue;
    found.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/** Pids whose initial environment carries `name=value` (processes we may not read are skipped). */
export async function processesWithEnvironment(name: string, value: string): Promise<number[]> {
  const needle = Buffer.from(`${name}=${value}\0`);
  const found: number[] = [];
  await mapLimited(await pids(), PROC_READS_IN_FLIGHT, async (pid) => {
    if (pid === process.pid) return;
    try {
      const environ = await readFile(`/proc/${pid}/environ`);
      const at = environ.indexOf(needle);
      if (at === 0 || (at > 0 && environ[at - 1] === 0)) found.push(pid);
    } catch {
      // Gone, or not ours to read.
    }
  });
  return found;
}

/** The marker every process of an environment inherits. */
export const ENVIRONMENT_MARKER = 'DEVPOCKET_ENVIRONMENT_ID';

/** Every process of one environment: the marked ones and their descendants, never this process or its ancestors. */
export async function environmentProcesses(id: string): Promise<{ pids: Set<number>; table: Map<number, ProcessInfo> }> {
  const [marked, table] = await Promise.all([processesWithEnvironment(ENVIRONMENT_MARKER, id), processTable()]);
  const result = withDescendants(
    table,
    marked.filter((pid) => table.has(pid)),
  );
  let self: number | undefined = process.pid;
  while (self !== undefined && self > 0) {
    result.delete(self);
    self = table.get(self)?.ppid;
  }
  return { pids: result, table };
}

/** Resident memory of a process, in bytes (VmRSS); null when unknown (gone, or a kernel thread). */
export async function residentBytes(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match?.[1] ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/**
 * Ends every process of an environment: SIGTERM, then SIGKILL for whatever is still there after
 * `graceMs`; resolves once none is left (or after a last SIGKILL round if some refuse to go).
 */
export async function killEnvironmentProcesses(id: string, graceMs = 1500): Promise<number> {
  let { pids: victims } = await environmentProcesses(id);
  const total = victims.size;
  if (total === 0) return 0;
  for (const pid of victims) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (victims.size > 0 && Date.now() < deadline) {
    await delay(25);
    victims = (await environmentProcesses(id)).pids;
  }
  for (let round = 0; victims.size > 0 && round < 40; round += 1) {
    for (const pid of victims) signal(pid, 'SIGKILL');
    await delay(25);
    victims = (await environmentProcesses(id)).pids;
  }
  return total;
}

/** The start time of this process, to recognise it later (pid + start time survive nothing else). */
export async function selfIdentity(): Promise<{ pid: number; startTime: number }> {
  const info = await readProcess(process.pid);
  return { pid: process.pid, startTime: info?.startTime ?? 0 };
}

export async function isAlive(identity: { pid: number; startTime: number }): Promise<boolean> {
  const info = await readProcess(identity.pid);
  return info !== null && info.state !== 'Z' && info.startTime === identity.startTime;
}
