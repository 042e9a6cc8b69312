import { spawn } from 'node:child_process';
import { spawn as spawnPty } from 'node-pty';
import { AppError } from '../../common/errors/app-error.js';
import type { KeyedLock } from '../keyed-lock.js';
import { RuntimeError } from '../runtime.errors.js';
import type { EnvironmentSpec, ExecOptions, ExecSession, TerminalAttachment, TerminalSize } from '../runtime.provider.js';
import { clampTerminal } from '../terminal-size.js';
import { attachTmuxClient } from '../tmux-session.js';
import { PipeSession, PtySession } from './exec-session.js';
import { findExecutable, type LocalHost } from './local-host.js';
import type { LocalStatus } from './local-status.js';

type Session = PtySession | PipeSession;

/**
 * Processes started in running environments: `exec` (on a PTY with node-pty, or with pipes) and
 * the terminal attachment (a tmux client through exec). Keeps the sessions it started per
 * environment, so a stop, or the application's shutdown, ends them.
 */
export class LocalExec {
  private readonly sessions = new Map<string, Set<Session>>();

  constructor(
    private readonly host: LocalHost,
    private readonly lock: KeyedLock,
    private readonly status: LocalStatus,
  ) {}

  async exec(spec: EnvironmentSpec, argv: string[], options: ExecOptions): Promise<ExecSession> {
    const paths = this.host.paths(spec.id);
    const workdir = paths.workdir(spec.template.workingDirectory);
    const [command] = argv;
    if (command === undefined || command === '') throw new AppError(RuntimeError.EmptyCommand, 'Nothing to run: the command is empty');
    // Under the environment's lock: a process never starts while a stop is ending every process.
    return this.lock.run(spec.id, async () => {
      const status = await this.status.of(spec.id);
      if (status.state !== 'running') {
        throw new AppError(RuntimeError.NotRunning, `Environment ${spec.id} is not running (it is ${status.state})`);
      }
      const env = this.host.environment(spec, paths, await this.host.shellPath(spec), options.env);
      if ((await findExecutable(command, env.PATH ?? this.host.hostPath)) === null) {
        throw new AppError(RuntimeError.CommandNotFound, `Command not found in the environment: ${command}`);
      }
      const [file, args] = this.host.wrap(spec, paths, workdir, options.tty ? 'terminal' : 'process', argv);
      let session: Session;
      if (options.tty) {
        const pty = spawnPty(file, args, {
          name: 'xterm-256color',
          ...clampTerminal(options.cols, options.rows),
          cwd: workdir,
          env,
          encoding: null,
        });
        session = new PtySession(pty);
      } else {
        const child = spawn(file, args, { cwd: workdir, env, stdio: 'pipe', detached: true });
        await new Promise<void>((resolve, reject) => {
          child.once('spawn', resolve);
          child.once('error', reject);
        }).catch((error: unknown) => {
          throw new AppError(
            RuntimeError.CommandFailedToStart,
            `Could not start ${command}: ${error instanceof Error ? error.message : String(error)}`,
          );
        });
        session = new PipeSession(child, true);
      }
      this.track(spec.id, session);
      return session;
    });
  }

  /**
   * A tmux client on the environment's session, through exec (its own server, reached by the
   * environment's TMUX_TMPDIR). In a sandbox the pane's terminal lives in the tmux server's own
   * `/dev/pts`, which only the server's sandbox sees: its termios is read through tmux.
   */
  attachTerminal(spec: EnvironmentSpec, size: TerminalSize): Promise<TerminalAttachment> {
    const termios = this.host.sandboxed ? 'tmux-server' : 'pane-tty';
    return attachTmuxClient(spec, size, (argv, options) => this.exec(spec, argv, options), termios);
  }

  /** Ends every session started in the environment. */
  async killAll(id: string): Promise<void> {
    await Promise.all([...(this.sessions.get(id) ?? [])].map((session) => session.kill()));
  }

  /** Ends every session this process started (application shutdown). */
  async killEverything(): Promise<void> {
    await Promise.all([...this.sessions.values()].flatMap((sessions) => [...sessions].map((session) => session.kill())));
  }

  private track(id: string, session: Session): void {
    let sessions = this.sessions.get(id);
    if (!sessions) {
      sessions = new Set();
      this.sessions.set(id, sessions);
    }
    sessions.add(session);
    void session.exit.then(() => {
      sessions.delete(session);
      if (sessions.size === 0 && this.sessions.get(id) === sessions) this.sessions.delete(id);
    });
  }
}
