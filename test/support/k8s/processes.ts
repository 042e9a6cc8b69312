/**
 * The test cluster's processes: each in its own process group (so stopping it ends whatever it
 * started), output appended to a log file, and a watchdog that kills every group if the process
 * that started them dies without stopping them (a test worker killed on timeout).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, closeSync, promises as fs } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** Set once exited. */
  exitCode: number | null | undefined;
  signal: NodeJS.Signals | null | undefined;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: readonly string[];
  logFile: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Starts a process in a new session (its own process group), stdout and stderr appended to logFile. */
export function spawnManaged(options: SpawnOptions): ManagedProcess {
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`Could not start ${options.name} (${options.command})`);
  const managed: ManagedProcess = {
    name: options.name,
    pid: child.pid,
    logFile: options.logFile,
    child,
    exitCode: undefined,
    signal: undefined,
    exited: new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        managed.exitCode = code;
        managed.signal = signal;
        resolve();
      });
      child.once('error', () => resolve());
    }),
  };
  return managed;
}

export function isRunning(process: ManagedProcess): boolean {
  return process.exitCode === undefined;
}

/** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once the leader has exited. */
export async function stopManaged(managed: ManagedProcess, graceMs = 5_000): Promise<void> {
  signalGroup(managed.pid, 'SIGTERM');
  const exited = await Promise.race([managed.exited.then(() => true), delay(graceMs).then(() => false)]);
  // The whole group: also children that outlived the leader.
  signalGroup(managed.pid, 'SIGKILL');
  if (!exited) await Promise.race([managed.exited, delay(2_000)]);
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** The last lines of a log file, for error messages. */
export async function logTail(file: string, lines = 30): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * When process `parentPid` is gone, runs `teardown` (the real node's teardown script with its state
 * file, when that file is not empty: it must run while containerd still does), then kills the process
 * groups listed in `groupsFile` (one pgid a line) and every process whose environment holds
 * `<markerName>=<uid>` for a uid listed in `podsFile`. The caller appends to these files as it starts
 * things; a clean stop empties them and kills the watchdog.
 */
export function startWatchdog(
  parentPid: number,
  groupsFile: string,
  podsFile: string,
  markerName: string,
  logFile: string,
  teardown?: { script: string; stateFile: string },
): ManagedProcess {
  const script = [
    'parent=$1; groups=$2; pods=$3; marker=$4; teardown=$5; teardown_state=$6',
    'while kill -0 "$parent" 2>/dev/null; do sleep 1; done',
    'if [ -n "$teardown" ] && [ -s "$teardown_state" ]; then',
    '  bash "$teardown" "$teardown_state"',
    '  echo "watchdog: process $parent is gone; tore the real node down"',
    'fi',
    'if [ -s "$groups" ] || [ -s "$pods" ]; then',
    '  while read -r pgid; do [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null; done < "$groups"',
    '  if [ -s "$pods" ]; then',
    '    for environ in /proc/[0-9]*/environ; do',
    '      uid=$(tr "\\0" "\\n" 2>/dev/null < "$environ" | sed -n "s/^$marker=//p")',
    '      if [ -n "$uid" ] && grep -qxF -- "$uid" "$pods"; then pid=${environ#/proc/}; kill -KILL "${pid%/environ}" 2>/dev/null; fi',
    '    done',
    '  fi',
    '  echo "watchdog: process $parent is gone; killed the test cluster"',
    'fi',
  ].join('\n');
  return spawnManaged({
    name: 'watchdog',
    // bash: dash's kill takes no process group (`kill -KILL -- -PGID`).
    command: 'bash',
    args: [
      '-c',
      script,
      'k8s-testbed-watchdog',
      String(parentPid),
      groupsFile,
      podsFile,
      markerName,
      teardown?.script ?? '',
      teardown?.stateFile ?? '',
    ],
    logFile,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    cwd: '/',
  });
}
