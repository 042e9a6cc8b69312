import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { EnvironmentSpec } from '../runtime.provider.js';
import { TMUX_CONF } from '../tmux-conf.js';
import { TmuxCommand, tmuxSessionName } from '../tmux-session.js';
import type { EnvironmentPaths } from './environment-paths.js';
import type { StateStore } from './environment-state.js';
import { findExecutable, type LocalHost } from './local-host.js';
import type { LocalLogs } from './local-logs.js';
import type { TmuxClient } from './tmux.js';
import { guardChildStdio } from '../../common/process/child-stdio.js';

/**
 * An environment's workload on this host: its own tmux server, in the foreground (`tmux -D`) as a
 * detached child (inside bubblewrap when LOCAL_SANDBOX=bwrap), so it survives restarts of the API
 * server, with the session `devpocket_<id>` running the template's shell as a login shell in the
 * working directory. The runtime only ever talks to it through its socket, with `tmux -N` (never
 * starting a server). Knows which environments are being started (their state is `pending`).
 */
export class TmuxWorkload {
  private readonly starting = new Set<string>();

  constructor(
    private readonly host: LocalHost,
    private readonly state: StateStore,
    private readonly logs: LocalLogs,
    private readonly startTimeoutMs: number,
  ) {}

  /** True while launch() is starting the environment's server. */
  isStarting(id: string): boolean {
    return this.starting.has(id);
  }

  /** True when the server has the DevPocket session (asks tmux). */
  hasSession(paths: EnvironmentPaths): Promise<boolean> {
    return this.host.tmux(paths).hasSession(tmuxSessionName(paths.id));
  }

  /** True when a server answers on the socket (no process started): with `exit-empty on` it lives exactly as long as a session. */
  listening(paths: EnvironmentPaths): Promise<boolean> {
    return this.host.tmux(paths).listening();
  }

  /**
   * Starts the workload unless it runs. Records why in state.json when it cannot run (the
   * environment is then `failed`), and clears that record when it can.
   */
  async launch(spec: EnvironmentSpec, paths: EnvironmentPaths, workdir: string): Promise<void> {
    const tmux = this.host.tmux(paths);
    const session = tmuxSessionName(spec.id);
    if (await tmux.hasSession(session)) return;
    this.starting.add(spec.id);
    try {
      const failure = await this.launchServer(spec, paths, workdir, tmux, session);
      await this.state.update(paths, (state) => ({ ...state, failure }));
      if (failure !== null) await this.logs.writer(paths).append(`[runtime] cannot start: ${failure}`);
    } finally {
      this.starting.delete(spec.id);
    }
  }

  /** Ends the server, its session and every process in it; true when one was running. */
  async end(paths: EnvironmentPaths): Promise<boolean> {
    const tmux = this.host.tmux(paths);
    const wasRunning = await tmux.listening();
    if (wasRunning) await tmux.killServer();
    return wasRunning;
  }

  /** The server, then its session through the socket; the reason it cannot run, or null. */
  private async launchServer(
    spec: EnvironmentSpec,
    paths: EnvironmentPaths,
    workdir: string,
    tmux: TmuxClient,
    session: string,
  ): Promise<string | null> {
    const shell = await findExecutable(spec.template.shell, this.host.hostPath);
    if (shell === null) return `the shell ${spec.template.shell} does not exist on this host`;
    // A server without our session (the user ended it but kept another one), or a socket left by a dead server.
    if (await tmux.listening()) await tmux.killServer();
    await rm(paths.socket, { force: true });

    const conf = join(paths.tmuxDir, 'devpocket.tmux.conf');
    await mkdir(paths.tmuxDir, { recursive: true, mode: 0o700 });
    await writeFile(conf, TMUX_CONF, { mode: 0o600 });
    const [file, args] = this.host.wrap(spec, paths, workdir, 'workload', ['tmux', '-f', conf, '-D']);
    const child = spawn(file, args, {
      cwd: workdir,
      env: this.host.environment(spec, paths, shell),
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    guardChildStdio(child);
    let errors = '';
    let exited = false;
    child.stderr?.on('data', (chunk: Buffer) => {
      if (errors.length < 4096) errors += chunk.toString('utf8');
    });
    child.on('error', (error) => {
      exited = true;
      errors += error.message;
    });
    child.on('exit', () => {
      exited = true;
    });
    const release = (): void => {
      child.stderr?.destroy();
      child.unref();
    };

    const deadline = Date.now() + this.startTimeoutMs;
    while (!exited && !(await tmux.listening())) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        release();
        return `the tmux server did not start within ${this.startTimeoutMs} ms${errors ? `: ${errors.trim()}` : ''}`;
      }
      await delay(20);
    }
    if (exited) {
      release();
      return `the tmux server exited at once${errors ? `: ${errors.trim()}` : ''}`;
    }
    const created = await tmux.run(...TmuxCommand.newDetached(session, workdir), ';', ...TmuxCommand.exitWithLastSession());
    if (created.code !== 0) {
      await tmux.killServer();
      child.kill('SIGKILL');
      release();
      return `tmux could not create the session: ${created.stderr.trim() || `exit code ${created.code}`}`;
    }
    release();
    await this.logs
      .writer(paths)
      .append(`[runtime] started: tmux session ${session} running ${shell}${this.host.sandboxed ? ' (bubblewrap sandbox)' : ''}`);
    return null;
  }
}
