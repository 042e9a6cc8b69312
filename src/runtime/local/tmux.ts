import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createConnection } from 'node:net';
import { guardChildStdio } from '../../common/process/child-stdio.js';
import { TmuxCommand } from '../tmux-session.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program (argv, never a shell) and collects its output; never rejects for a non-zero exit. */
export function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 10_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ code: 0, stdout, stderr });
        return;
      }
      const code = typeof error.code === 'number' ? error.code : 127;
      resolve({ code, stdout, stderr: stderr || error.message });
    });
    guardChildStdio(child);
  });
}

const resolvedTmux = new Map<string, string>();

/** tmux's absolute path on a PATH, found once: every call otherwise searches PATH again (one execve per directory). */
function tmuxPath(path: string): string {
  let resolved = resolvedTmux.get(path);
  if (resolved === undefined) {
    const found = path
      .split(delimiter)
      .filter((dir) => dir !== '')
      .map((dir) => join(dir, 'tmux'))
      .find((candidate) => isExecutable(candidate));
    resolved = found ?? 'tmux';
    resolvedTmux.set(path, resolved);
  }
  return resolved;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The runtime's own tmux client for one environment's server. Every call passes `-N`, so it
 * never starts a server: only the workload launch does, inside the sandbox when there is one.
 */
export class TmuxClient {
  constructor(
    readonly socket: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  run(...args: string[]): Promise<CommandResult> {
    return run(tmuxPath(this.env.PATH ?? process.env.PATH ?? ''), ['-N', '-S', this.socket, ...args], this.env);
  }

  async hasSession(name: string): Promise<boolean> {
    return (await this.run(...TmuxCommand.hasSession(name))).code === 0;
  }

  async killServer(): Promise<void> {
    await this.run(...TmuxCommand.killServer());
  }

  /** True when a server accepts connections on the socket. */
  listening(): Promise<boolean> {
    return new Promise((resolve) => {
      const connection = createConnection({ path: this.socket });
      connection.once('connect', () => {
        connection.destroy();
        resolve(true);
      });
      connection.once('error', () => {
        connection.destroy();
        resolve(false);
      });
    });
  }
}

/** Parses `tmux -V` ("tmux 3.3a", "tmux next-3.4", "tmux master"): true when at least major.minor. */
export function tmuxVersionAtLeast(versionOutput: string, major: number, minor: number): boolean {
  const match = /(\d+)\.(\d+)/.exec(versionOutput);
  if (!match) return /master|next/.test(versionOutput);
  const [found, foundMinor] = [Number(match[1]), Number(match[2])];
  return found > major || (found === major && foundMinor >= minor);
}
