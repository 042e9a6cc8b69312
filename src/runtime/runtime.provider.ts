import type { Duplex } from 'node:stream';
import { AppError } from '../common/errors/app-error.js';
import type { PaneModes } from './pane-modes.js';
import { RuntimeError } from './runtime.errors.js';
import type { Template, TemplateResources } from '../templates/template.js';

/**
 * The runtime port: where environments actually run. One implementation is bound from
 * configuration (`RUNTIME=local` or `kubernetes`). Every operation is idempotent and
 * safe to repeat after a crash; identifiers reaching the runtime are validated by the caller
 * (environment ids are 24 hex characters, slugs are DNS-1123 labels).
 */

/** Environment ids are 24 lower-case hex characters (a MongoDB ObjectId): safe in paths and names. */
export const ENVIRONMENT_ID_PATTERN = /^[0-9a-f]{24}$/;

/** Every runtime checks ids before they reach a path, an object name or a tmux name. */
export function assertEnvironmentId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !ENVIRONMENT_ID_PATTERN.test(id)) {
    throw new AppError(
      RuntimeError.InvalidEnvironmentId,
      `Invalid environment id ${JSON.stringify(id)}: expected 24 lower-case hex characters`,
    );
  }
}

/** Everything a runtime needs to know about one environment. */
export interface EnvironmentSpec {
  /** 24 lower-case hex characters (the environment's id); safe in paths and names. */
  id: string;
  /** DNS-1123 label derived from the display name, for human-readable runtime object names. */
  slug: string;
  userId: string;
  template: Template;
  resources: TemplateResources;
  /** Template variables merged with the user's; passed as an environment, never through a shell string. */
  environmentVariables: Record<string, string>;
}

/** Where a browser preview of one of an environment's ports is proxied to (src/previews/). */
export interface PreviewTarget {
  host: string;
  port: number;
}

/** The runtime's view of an environment's workload. */
export type RuntimeState =
  /** Nothing exists (never provisioned, or destroyed). */
  | 'absent'
  /** Storage exists, no workload runs (stopped). */
  | 'stopped'
  /** The workload is being scheduled or started. */
  | 'pending'
  | 'running'
  /** The workload cannot run; `message` says why. */
  | 'failed';

export interface RuntimeStatus {
  state: RuntimeState;
  message: string | null;
  /** Progress of the template's startup script, when known. */
  installation: { completed: boolean; failed: boolean; stepsDone: number; stepsTotal: number } | null;
}

export interface ExecOptions {
  tty: boolean;
  cols?: number;
  rows?: number;
  /** Extra environment for this process only. */
  env?: Record<string, string>;
}

export interface ExitStatus {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: string | null;
}

/**
 * A running process inside an environment. `stream` carries stdin (write) and stdout+stderr
 * (read; with a TTY they are one stream). Backpressure works both ways: pausing the readable side
 * stops reading from the process.
 */
export interface ExecSession {
  readonly stream: Duplex;
  resize(cols: number, rows: number): void;
  /** Resolves once, when the process has exited. */
  readonly exit: Promise<ExitStatus>;
  /** Ends the process (SIGHUP then SIGKILL for a TTY); resolves when it has exited. */
  kill(): Promise<void>;
}

export interface TerminalSize {
  cols: number;
  rows: number;
}

/**
 * The terminal into an environment: one client of its persistent session (the one every
 * terminal shares, which outlives them all). An ExecSession on a TTY: `stream` carries keystrokes
 * in and the rendered screen out, `resize` sets this client's size, and `kill()` detaches this
 * client only, leaving the session and its programs running.
 */
export interface TerminalAttachment extends ExecSession {
  /** The persistent session's name, the same for every attachment to one environment. */
  readonly sessionName: string;
  /** Asks for a full redraw of the screen, which arrives on `stream` like any output. */
  repaint(): void;
  /**
   * The modes of the pane this terminal shows (echo and canonical mode of its termios, alternate
   * screen, cursor keys, copy mode), read in the environment by a helper that lives as long as the
   * attachment (docs/runtime.md, "Pane modes"). Null when they cannot be read; never rejects.
   * Cheap, but a process round trip: callers debounce (at most one in flight).
   */
  probeModes?(): Promise<PaneModes | null>;
}

export type { PaneModes } from './pane-modes.js';

export interface LogQuery {
  /** At most this many of the newest lines. */
  lines: number;
  /** Only lines written at or after this time (when the source records times). */
  since?: Date;
}

export interface LogPage {
  lines: string[];
  /** Lines available before `lines` was cut to size. */
  total: number;
}

export interface RuntimeMetrics {
  /** CPU in use, in cores (e.g. 0.25), or null when unknown. */
  cpuCores: number | null;
  memoryBytes: number | null;
  diskBytes: number | null;
  networkInBytes: number | null;
  networkOutBytes: number | null;
  at: Date;
}

export type Unsubscribe = () => void;

/** Why a runtime cannot give an environment a new storage size (RuntimeProvider.checkStorage). */
export interface StorageRefusal {
  code: 'storage_cannot_shrink' | 'storage_not_expandable';
  message: string;
}

/** What one readiness check of the runtime found. */
export interface RuntimeReadiness {
  /** True when the runtime can serve now. */
  ready: boolean;
  /** What was seen (`tmux 3.3a`, `Kubernetes API v1.36.0`), or why it cannot serve (`tmux was not found on PATH`). */
  detail: string;
}

export abstract class RuntimeProvider {
  abstract readonly kind: 'local' | 'kubernetes';

  /**
   * Creates storage and configuration and starts the workload (and the template's startup
   * script). Returns once the workload was asked to start; `status` tells when it runs.
   */
  abstract provision(spec: EnvironmentSpec): Promise<void>;
  /** Starts a stopped environment; storage is reused. */
  abstract start(spec: EnvironmentSpec): Promise<void>;
  /** Stops the workload (every process ends), keeping storage. */
  abstract stop(spec: EnvironmentSpec): Promise<void>;
  /** Removes everything, storage included. Repeating it is harmless. */
  abstract destroy(spec: EnvironmentSpec): Promise<void>;
  abstract status(spec: EnvironmentSpec): Promise<RuntimeStatus>;
  /** Calls `listener` whenever the runtime notices a state change of any environment it runs. */
  abstract watch(listener: (environmentId: string, status: RuntimeStatus) => void): Unsubscribe;
  /** Runs `argv` inside the environment as its user, in its working directory. */
  abstract exec(spec: EnvironmentSpec, argv: string[], options: ExecOptions): Promise<ExecSession>;
  /**
   * Attaches a terminal of `size` to the environment's persistent session (one tmux client on
   * `devpocket_<id>`, see tmux-session.ts). Every attachment to one environment shows the same
   * session; the session takes the size of its most recently active attachment. Fails like
   * `exec` when the environment is not running.
   */
  abstract attachTerminal(spec: EnvironmentSpec, size: TerminalSize): Promise<TerminalAttachment>;
  /** The environment's log (startup script output, then runtime events). */
  abstract logs(spec: EnvironmentSpec, query: LogQuery): Promise<LogPage>;
  /**
   * Calls `onLine` with the newest `backlog` lines already in the log, then with every line written
   * after them, as one ordered sequence (no line twice, none skipped between the two), until the
   * returned function is called.
   */
  abstract followLogs(spec: EnvironmentSpec, onLine: (line: string) => void, backlog?: number): Unsubscribe;
  abstract metrics(spec: EnvironmentSpec): Promise<RuntimeMetrics>;
  /** Ids of every environment this runtime holds resources for (for the reconciler). */
  abstract list(): Promise<string[]>;
  /**
   * One cheap check, within `timeoutMs`, that the runtime can serve now: the Kubernetes API answers
   * an authenticated call, tmux runs on this host. Never rejects: a failure is `ready: false` with
   * the reason. No memory of earlier checks: `/health/ready` decides what failures mean
   * (src/common/health/runtime-health.ts).
   */
  abstract ready(timeoutMs: number): Promise<RuntimeReadiness>;
  /**
   * Why this runtime, as configured, cannot run environments of `template`, or null when it can
   * (the Kubernetes runtime refuses a template that runs as root where the namespaces' Pod Security
   * level is `restricted`). Asked before an environment is created; provision and start refuse
   * such a template too (`template_not_allowed`).
   */
  abstract templateRefusal(template: Template): string | null;

  /**
   * Where this server reaches `port` of the running environment for a web preview, or null when
   * it cannot now (not running, no address yet). The caller has checked that the port is declared.
   */
  abstract previewTarget(spec: EnvironmentSpec, port: number): Promise<PreviewTarget | null>;

  /**
   * Why the environment cannot have `storage` at its next start, when the runtime can tell now
   * (a volume that cannot shrink, or cannot grow); null when it can, or cannot tell (the start then
   * decides). Never rejects. Runtimes whose storage is not a sized volume keep this default.
   */
  checkStorage(_spec: EnvironmentSpec, _storage: string): Promise<StorageRefusal | null> {
    return Promise.resolve(null);
  }

  /**
   * Environments of which the runtime holds resources it cannot tell are this installation's:
   * made before installations were told apart (docs/kubernetes.md, "Installations"). Never orphans:
   * the reconciler adopts those whose environment this installation has, and leaves the others
   * alone. Runtimes whose resources are this server's alone keep this default (none).
   */
  listUnclaimed(): Promise<string[]> {
    return Promise.resolve([]);
  }

  /** Marks what the runtime holds of an environment (one `listUnclaimed` named) as this installation's. */
  adopt(_spec: EnvironmentSpec): Promise<void> {
    return Promise.resolve();
  }
}
