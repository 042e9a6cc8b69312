/**
 * The processes of a pod on kwok's node (./pod-runner.ts): its container command, started detached
 * as the container's user (as root: in a read-only sandbox of this host), and the end of every
 * process that carries the pod's marker; and a one-shot exec through the API server.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, promises as fs } from 'node:fs';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';

import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';

const KILL_WAIT_MS = 2_000;

export interface ContainerCommand {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  logFile: string;
  user: { uid?: number; gid?: number };
  /** The emulator's host directory: writable in the sandbox of a command running as root. */
  root: string;
  /** `namespace/name`, for the log. */
  ref: string;
  log: (line: string) => void;
  onProcessGroup?: (pgid: number) => void;
  /** Whether the pod is being ended (its command's exit is then not logged as news). */
  ending: () => boolean;
}

/** Starts the container's command detached, in its own process group, output appended to `logFile`. */
export function spawnContainerCommand(command: ContainerCommand): ChildProcess {
  const { argv, cwd, env, logFile, user, ref, log } = command;
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  // A command running as root would run as root on this host: it gets the host's file system
  // read-only (bubblewrap), with only the pods' volumes writable, as in a container.
  const asRoot = (user.uid ?? 0) === 0;
  const [file, ...args] = asRoot && bubblewrapAvailable() ? [...rootSandbox(command.root), ...argv] : argv;
  try {
    child = spawn(file ?? argv[0], args, {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', fd, fd],
      ...(asRoot ? {} : { uid: user.uid, gid: user.gid ?? 0 }),
    });
  } finally {
    closeSync(fd);
  }
  child.unref();
  if (child.pid !== undefined) command.onProcessGroup?.(child.pid);
  child.once('error', (error) => {
    log(`pod-runner: ${ref}: cannot run ${argv[0]}: ${error.message}`);
    void fs.appendFile(logFile, `[testbed] cannot run ${JSON.stringify(argv)}: ${error.message}\n`).catch(() => undefined);
  });
  child.once('exit', (code, signal) => {
    const how = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
    if (!command.ending()) log(`pod-runner: ${ref}: command ended (${how})`);
    void fs.appendFile(logFile, `[testbed] command ended (${how})\n`).catch(() => undefined);
  });
  return child;
}

/**
 * SIGTERM to the command's process group and every process with the pod's marker (`marker` is
 * `NAME=value`); SIGKILL what is left after `graceMs`. Resolves with the pids that survived.
 */
export async function killPodProcesses(marker: string, group: number | undefined, graceMs: number): Promise<number[]> {
  const alive = async (): Promise<number[]> => {
    const pids = await pidsWithEnvironmentEntry(marker);
    if (group !== undefined && groupExists(group)) pids.push(-group);
    return pids;
  };
  const signalAll = (pids: number[], signal: NodeJS.Signals): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone meanwhile
      }
    }
  };
  let remaining = await alive();
  if (remaining.length === 0) return [];
  signalAll(remaining, 'SIGTERM');
  const termDeadline = Date.now() + graceMs;
  while (remaining.length > 0 && Date.now() < termDeadline) {
    await delay(100);
    remaining = await alive();
  }
  const killDeadline = Date.now() + KILL_WAIT_MS;
  while (remaining.length > 0 && Date.now() < killDeadline) {
    signalAll(remaining, 'SIGKILL');
    await delay(50);
    remaining = await alive();
  }
  return remaining;
}

let bubblewrap: boolean | null = null;

/** Whether bubblewrap (`bwrap`) is on PATH. */
function bubblewrapAvailable(): boolean {
  bubblewrap ??= spawnSync('bwrap', ['--version'], { stdio: 'ignore' }).status === 0;
  return bubblewrap;
}

/** bubblewrap arguments: this host read-only, a private /tmp, the pods' volumes (under `root`) writable. */
function rootSandbox(root: string): string[] {
  return ['bwrap', '--ro-bind', '/', '/', '--dev-bind', '/dev', '/dev', '--tmpfs', '/tmp', '--bind', root, root, '--'];
}

/** Pids (not this process) whose environment holds exactly `entry` (`NAME=value`). */
export async function pidsWithEnvironmentEntry(entry: string): Promise<number[]> {
  const needle = Buffer.from(`${entry}\0`);
  const result: number[] = [];
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let environ: Buffer;
    try {
      environ = await fs.readFile(`/proc/${name}/environ`);
    } catch {
      continue;
    }
    const at = environ.indexOf(needle);
    if (at === 0 || (at > 0 && environ[at - 1] === 0)) result.push(pid);
  }
  return result;
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs a command through the API server's exec (no stdin, output discarded); resolves with the status. */
export function execOnce(kubeConfig: KubeConfig, namespace: string, pod: string, container: string, command: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const sink = new PassThrough();
    sink.resume();
    let settled = false;
    const settle = (status: string): void => {
      if (!settled) {
        settled = true;
        resolve(status);
      }
    };
    new Exec(kubeConfig)
      .exec(namespace, pod, container, command, sink, sink, null, false, (status: V1Status) => {
        settle(status.status === 'Success' ? 'Success' : `${status.status ?? ''} ${status.message ?? ''}`.trim());
      })
      .then((socket) => {
        socket.on('close', () => settle('closed without status'));
      })
      .catch(reject);
  });
}
