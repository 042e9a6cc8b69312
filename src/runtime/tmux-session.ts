import type { Duplex } from 'node:stream';
import {
  assertEnvironmentId,
  type EnvironmentSpec,
  type ExecOptions,
  type ExecSession,
  type ExitStatus,
  type TerminalAttachment,
  type TerminalSize,
} from './runtime.provider.js';
import { type PaneModes, paneProbeCommand, type TermiosSource } from './pane-modes.js';
import { PaneProbe } from './pane-probe.js';
import { clampTerminal } from './terminal-size.js';
import { TMUX_REPAINT_KEYS } from './tmux-conf.js';

/**
 * The environment's persistent tmux session, as every runtime spells it: its name, the tmux
 * commands the runtimes run on it, and the terminal attachment (`RuntimeProvider.attachTerminal`).
 * Nothing outside src/runtime/ builds a tmux command or a session name: the terminal only ever
 * holds a TerminalAttachment. The session's server is configured with TMUX_CONF (tmux-conf.ts).
 */

/** The tmux session every environment runs, and every terminal attaches to: `devpocket_<id>`. */
export function tmuxSessionName(id: string): string {
  assertEnvironmentId(id);
  return `devpocket_${id}`;
}

/**
 * Arguments of the tmux commands the runtimes run on an environment's session (without `tmux`
 * itself and without the socket options: the local runtime prefixes `-N -S <socket>`; a command
 * run inside the environment is `['tmux', ...args]`).
 */
export const TmuxCommand = {
  /** A tmux client on the session, creating it when it is missing: the terminal's one upstream. */
  attach: (session: string): string[] => ['new-session', '-A', '-s', session],
  /** Creates the session, detached, its shell in `workdir`. */
  newDetached: (session: string, workdir: string): string[] => ['new-session', '-d', '-s', session, '-c', workdir],
  /** Exits 0 when the session exists (exact name, never a prefix). */
  hasSession: (session: string): string[] => ['has-session', '-t', `=${session}`],
  /** Ends the server, every session and every process in them. */
  killServer: (): string[] => ['kill-server'],
  /** Makes the server exit with its last session (so "server listening" means "session exists"). */
  exitWithLastSession: (): string[] => ['set-option', '-s', 'exit-empty', 'on'],
} as const;

/**
 * A tmux client on the environment's session, running through the runtime's exec with a TTY.
 * Everything but `repaint()` and `probeModes()` is the exec session's: ending it detaches this
 * client only, the session and its programs live on. The pane-modes probe (pane-probe.ts), when
 * given, is started at the first `probeModes()` and ends with the client.
 */
export class TmuxAttachment implements TerminalAttachment {
  readonly stream: Duplex;
  readonly exit: Promise<ExitStatus>;

  constructor(
    private readonly client: ExecSession,
    readonly sessionName: string,
    private readonly probe: PaneProbe | null = null,
  ) {
    this.stream = client.stream;
    this.exit = client.exit;
    if (probe !== null) void client.exit.then(() => probe.close());
  }

  /** The modes of the pane this client shows, read in the environment; null when they cannot be read. Never rejects. */
  probeModes(): Promise<PaneModes | null> {
    return this.probe === null ? Promise.resolve(null) : this.probe.probe();
  }

  resize(cols: number, rows: number): void {
    this.client.resize(cols, rows);
  }

  /** The private repaint key of TMUX_CONF: tmux redraws this client's whole screen; the program never sees it. */
  repaint(): void {
    if (this.stream.writable) this.stream.write(TMUX_REPAINT_KEYS);
  }

  kill(): Promise<void> {
    this.probe?.close();
    return this.client.kill();
  }
}

/** How a runtime runs argv in a running environment (its own `exec`). */
export type EnvironmentExec = (argv: string[], options: ExecOptions) => Promise<ExecSession>;

/**
 * `attachTerminal` for every runtime: `tmux new-session -A -s devpocket_<id>` through the
 * runtime's exec, on a TTY of the given size (clamped; the default size when missing). It fails
 * as that exec does (not running, tmux missing). Its pane-modes probe runs through the same exec,
 * without a TTY, reading the termios as `termios` says (pane-modes.ts).
 */
export async function attachTmuxClient(
  spec: EnvironmentSpec,
  size: TerminalSize,
  exec: EnvironmentExec,
  termios: TermiosSource = 'pane-tty',
): Promise<TmuxAttachment> {
  const session = tmuxSessionName(spec.id);
  const client = await exec(['tmux', ...TmuxCommand.attach(session)], { tty: true, ...clampTerminal(size.cols, size.rows) });
  const probe = new PaneProbe(() => exec(paneProbeCommand(session, termios), { tty: false }), { label: session });
  return new TmuxAttachment(client, session, probe);
}
