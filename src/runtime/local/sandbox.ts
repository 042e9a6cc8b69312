import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve, sep } from 'node:path';

/**
 * Bubblewrap (bwrap) confinement for the local runtime (LOCAL_SANDBOX=bwrap). Every process of
 * an environment runs in its own mount, PID, IPC and UTS namespaces with no capabilities:
 *
 * - the host file system read-only (`--ro-bind / /`), a private /tmp and /dev, its own /proc;
 * - the server's data directory (database, outbox, secrets, other environments), the server
 *   user's home, /root, /home, /run and the server's working directory hidden behind empty tmpfs;
 * - then the environment's own home and tmux directory bound back read-write, at the same paths.
 *
 * The network is shared with the host (environments need it to install packages): see
 * docs/runtime.md for what that means.
 */

/** What a sandboxed process is. */
export type SandboxRole =
  /** The tmux server (`tmux -D`): outlives the API server, so neither `--die-with-parent` nor a controlling terminal. */
  | 'workload'
  /** A process with pipes (exec without TTY, startup steps): its own session, ends with the API server. */
  | 'process'
  /** A process on a PTY: keeps the PTY as its controlling terminal (job control, SIGWINCH), ends with the API server. */
  | 'terminal';

export interface SandboxLayout {
  /** DATA_DIR: hidden entirely. */
  dataDir: string;
  /** Where environments live (DATA_DIR/environments): hidden too, in case it is elsewhere. */
  localRoot: string;
  home: string;
  tmuxDir: string;
  workdir: string;
  /** DNS-1123 label used as the sandbox's host name. */
  hostname: string;
}

/** Directories a sandbox must never hide, nor hide a parent of: the system it runs on. */
const SYSTEM_DIRECTORIES = [
  '/',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/usr',
  '/etc',
  '/opt',
  '/var',
  '/srv',
  '/proc',
  '/dev',
  '/sys',
];

function isInside(path: string, parent: string): boolean {
  return path === parent || path.startsWith(parent.endsWith(sep) ? parent : `${parent}${sep}`);
}

/** Host paths hidden from every environment (besides /tmp and the data directory). */
export function hiddenPaths(layout: Pick<SandboxLayout, 'dataDir' | 'localRoot'>, cwd = process.cwd(), serverHome = homedir()): string[] {
  const candidates = ['/root', '/home', '/run', serverHome, cwd, layout.dataDir, layout.localRoot].map((path) => resolve(path));
  const hidden: string[] = [];
  for (const path of candidates) {
    if (SYSTEM_DIRECTORIES.some((system) => isInside(system, path))) continue;
    if (hidden.some((already) => isInside(path, already))) continue;
    if (!existsSync(path)) continue;
    for (let i = hidden.length - 1; i >= 0; i -= 1) if (isInside(hidden[i], path)) hidden.splice(i, 1);
    hidden.push(path);
  }
  return hidden;
}

/** The bwrap arguments (everything before the command) for one process of an environment. */
export function sandboxArguments(layout: SandboxLayout, role: SandboxRole, hidden: string[]): string[] {
  const args = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'];
  for (const path of hidden) args.push('--tmpfs', path);
  // Name resolution on systemd-resolved hosts goes through /run (resolv.conf is a link into it).
  if (hidden.includes('/run') && existsSync('/run/systemd/resolve')) args.push('--ro-bind', '/run/systemd/resolve', '/run/systemd/resolve');
  args.push('--bind', layout.home, layout.home, '--bind', layout.tmuxDir, layout.tmuxDir);
  args.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--hostname', layout.hostname);
  args.push('--cap-drop', 'ALL');
  if (role !== 'terminal') args.push('--new-session');
  if (role !== 'workload') args.push('--die-with-parent');
  args.push('--chdir', layout.workdir, '--');
  return args;
}
