import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { constants as fsConstants, Dirent, existsSync, mkdirSync } from 'node:fs';
import { access, chmod, cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Logger, OnApplicationShutdown } from '@nestjs/common';
import { spawn as spawnPty } from 'node-pty';
import { Clock } from '../../common/clock/clock.js';
import { AppError } from '../../common/errors/app-error.js';
import { RuntimeError } from '../runtime.errors.js';
import type { AppConfig } from '../../config/namespaces/app.config.js';
import type { RuntimeConfig } from '../../config/namespaces/runtime.config.js';
import { describeSteps, installationNotes, specHash } from '../installation.js';
import { LineSplitter } from '../log-lines.js';
import { TMUX_CONF } from '../tmux-conf.js';
import {
  EnvironmentSpec,
  ExecOptions,
  ExecSession,
  LogPage,
  LogQuery,
  RuntimeMetrics,
  RuntimeProvider,
  RuntimeStatus,
  Unsubscribe,
} from '../runtime.provider.js';
import { EnvironmentLog, followLog, readLogPage } from './environment-log.js';
import { assertEnvironmentId, ENVIRONMENT_ID_PATTERN, EnvironmentPaths, MAX_SOCKET_PATH_BYTES, sessionName } from './environment-paths.js';
import { LocalEnvironmentState, readState, writeState } from './environment-state.js';
import { clampTerminalSize, PipeSession, PtySession } from './exec-session.js';
import {
  CLOCK_TICKS_PER_SECOND,
  ENVIRONMENT_MARKER,
  environmentProcesses,
  isAlive,
  killEnvironmentProcesses,
  residentBytes,
  selfIdentity,
} from './process-tree.js';
import { hiddenPaths, sandboxArguments, SandboxRole } from './sandbox.js';
import { run, TmuxClient, tmuxVersionAtLeast } from './tmux.js';

export interface LocalRuntimeOptions {
  /** How often watch() looks at every environment, in ms (default 3000). */
  watchIntervalMs?: number;
  /** How long provision/start wait for the tmux server to listen, in ms (default 10000). */
  startTimeoutMs?: number;
}

type Listener = (environmentId: string, status: RuntimeStatus) => void;
type Session = PtySession | PipeSession;

interface Installation {
  controller: AbortController;
  done: Promise<void>;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** First sample window of metrics() when no earlier sample exists for the environment. */
const CPU_SAMPLE_MS = 250;
const DISK_TIMEOUT_MS = 15_000;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function serverUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? `uid${process.getuid?.() ?? 0}`;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** `command -v` in Node: the executable file `name` resolves to on `path`, or null. */
export async function findExecutable(name: string, path: string): Promise<string | null> {
  const candidates = name.includes('/')
    ? [name]
    : path
        .split(delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      const info = await stat(candidate);
      if (!info.isFile()) continue;
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return null;
}

/** Removes a directory tree, making read-only directories writable first if needed (e.g. Go's module cache). */
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 3 });
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw error;
  }
  const unlock = async (dir: string): Promise<void> => {
    await chmod(dir, 0o700).catch(() => undefined);
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) if (entry.isDirectory()) await unlock(join(dir, entry.name));
  };
  await unlock(path);
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * The local runtime: each environment is a home directory plus its own tmux server on this host
 * (see docs/runtime.md). The tmux server runs in the foreground (`tmux -D`) as a detached child,
 * inside bubblewrap when LOCAL_SANDBOX=bwrap, so it survives restarts of the API server; the
 * runtime only ever talks to it through its socket, with `tmux -N` (never starting a server).
 *
 * Every process of an environment (workload, startup steps, exec) gets the same environment:
 * HOME, USER, LOGNAME, SHELL, TERM, LANG, PATH, then the spec's variables, then TMUX_TMPDIR and
 * DEVPOCKET_ENVIRONMENT_ID (which the runtime relies on and which cannot be overridden). Processes
 * run as the server's own OS user: the template's user/uid are for containers.
 */
export class LocalRuntime extends RuntimeProvider implements OnApplicationShutdown {
  readonly kind = 'local' as const;
  private readonly logger = new Logger('LocalRuntime');
  private readonly sandboxed: boolean;
  private readonly hidden: string[];
  private readonly watchIntervalMs: number;
  private readonly startTimeoutMs: number;
  private readonly serverUser = serverUserName();
  private readonly hostPath = process.env.PATH ?? DEFAULT_PATH;

  private readonly locks = new Map<string, Promise<void>>();
  private readonly stateWrites = new Map<string, Promise<void>>();
  private readonly logFiles = new Map<string, EnvironmentLog>();
  private readonly installations = new Map<string, Installation>();
  private readonly sessions = new Map<string, Set<Session>>();
  private readonly starting = new Set<string>();
  private readonly cpuSamples = new Map<string, { at: number; ticks: Map<string, number> }>();
  private readonly listeners = new Set<Listener>();
  private readonly known = new Map<string, string>();
  private poller: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private observing: Promise<void> = Promise.resolve();
  private baselineTaken = false;
  private closed = false;

  constructor(
    private readonly config: RuntimeConfig,
    private readonly app: AppConfig,
    private readonly clock: Clock,
    options: LocalRuntimeOptions = {},
  ) {
    super();
    this.sandboxed = config.localSandbox === 'bwrap';
    this.watchIntervalMs = options.watchIntervalMs ?? 3000;
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
    this.checkHost();
    mkdirSync(config.localRoot, { recursive: true, mode: 0o700 });
    this.hidden = this.sandboxed ? hiddenPaths({ dataDir: app.dataDir, localRoot: config.localRoot }) : [];
  }

  /** Refuses to boot on a host that cannot run environments, with a message that says what to install or change. */
  private checkHost(): void {
    const tmux = spawnSync('tmux', ['-V'], { encoding: 'utf8' });
    if (tmux.error || tmux.status !== 0) {
      throw new Error('The local runtime needs tmux 3.2 or newer on PATH (e.g. `apt-get install tmux`); tmux was not found');
    }
    if (!tmuxVersionAtLeast(tmux.stdout, 3, 2)) {
      throw new Error(`The local runtime needs tmux 3.2 or newer (found ${tmux.stdout.trim()})`);
    }
    if (this.sandboxed) {
      const bwrap = spawnSync('bwrap', ['--version'], { encoding: 'utf8' });
      if (bwrap.error || bwrap.status !== 0) {
        throw new Error('LOCAL_SANDBOX=bwrap needs bubblewrap on PATH (e.g. `apt-get install bubblewrap`); bwrap was not found');
      }
      if (process.getuid?.() === 0) {
        this.logger.warn(
          'The API server runs as root: sandboxed environments run as uid 0 without capabilities, and can read root-owned files the sandbox does not hide. Run the server as an unprivileged user.',
        );
      }
    } else if (this.app.isProduction) {
      this.logger.warn('The local runtime runs WITHOUT a sandbox (ALLOW_UNSANDBOXED_LOCAL_RUNTIME=true): for a single trusted user only.');
    }
    const probe = new EnvironmentPaths(this.config.localRoot, '0'.repeat(24));
    if (Buffer.byteLength(probe.socket) > MAX_SOCKET_PATH_BYTES) {
      throw new Error(
        `DATA_DIR is too long for the local runtime: tmux sockets would live at ${probe.socket} (${Buffer.byteLength(probe.socket)} bytes, at most ${MAX_SOCKET_PATH_BYTES}); choose a shorter DATA_DIR`,
      );
    }
  }

  // ------------------------------------------------------------------------------------------
  // The port

  async provision(spec: EnvironmentSpec): Promise<void> {
    const paths = this.paths(spec.id);
    const workdir = paths.workdir(spec.template.workingDirectory);
    await this.exclusive(spec.id, async () => {
      await this.prepareDirectories(paths, workdir);
      const hash = specHash(spec);
      const existing = await readState(paths.state);
      if (existing?.specHash === hash) {
        await this.launch(spec, paths, workdir);
        await this.resumeInstallation(spec, paths);
        return;
      }
      await this.interruptInstallation(spec.id);
      const log = this.log(paths);
      const { template } = spec;
      await log.append(`[runtime] provisioning from template ${template.name} ${template.version}`);
      if (template.startup.system.length > 0) {
        await log.append(
          `[runtime] skipped ${template.startup.system.length} system-level startup step(s): the local runtime never runs them on the host`,
          ...template.startup.system.map((step) => `[runtime]   skipped: ${step.split('\n').join(' ')}`),
        );
      }
      const missingCommands = await this.missingCommands(spec, paths);
      if (missingCommands.length > 0) await log.append(`[runtime] missing commands: ${missingCommands.join(', ')}`);
      const steps = template.startup.user;
      const state: LocalEnvironmentState = {
        version: 1,
        specHash: hash,
        provisionedAt: this.clock.now().toISOString(),
        installation: {
          stepsTotal: steps.length,
          stepsDone: 0,
          failedSteps: [],
          completed: steps.length === 0,
          interrupted: false,
          runner: steps.length === 0 ? null : await selfIdentity(),
        },
        missingCommands,
        failure: null,
      };
      await this.updateState(paths, () => state, true);
      await this.launch(spec, paths, workdir);
      if (steps.length > 0) this.startInstallation(spec, paths, steps);
    });
    this.announce(spec.id);
  }

  async start(spec: EnvironmentSpec): Promise<void> {
    const paths = this.paths(spec.id);
    const workdir = paths.workdir(spec.template.workingDirectory);
    await this.exclusive(spec.id, async () => {
      if (!(await exists(paths.root))) throw new AppError(RuntimeError.NotProvisioned, `Environment ${spec.id} is not provisioned`);
      await this.prepareDirectories(paths, workdir);
      const missingCommands = await this.missingCommands(spec, paths);
      const state = await readState(paths.state);
      if (state && state.missingCommands.join(',') !== missingCommands.join(',')) {
        await this.updateState(paths, (current) => ({ ...current, missingCommands }));
        await this.log(paths).append(
          missingCommands.length > 0
            ? `[runtime] missing commands: ${missingCommands.join(', ')}`
            : '[runtime] every required command is available',
        );
      }
      await this.launch(spec, paths, workdir);
      await this.resumeInstallation(spec, paths);
    });
    this.announce(spec.id);
  }

  /**
   * A startup script cut short (the environment was stopped, or the server died) continues with
   * its first unfinished step when the environment starts again.
   */
  private async resumeInstallation(spec: EnvironmentSpec, paths: EnvironmentPaths): Promise<void> {
    const state = await readState(paths.state);
    if (!state || state.installation.completed || this.installations.has(spec.id)) return;
    const steps = spec.template.startup.user;
    const from = Math.min(state.installation.stepsDone, steps.length);
    const runner = await selfIdentity();
    await this.updateState(paths, (current) => ({ ...current, installation: { ...current.installation, interrupted: false, runner } }));
    await this.log(paths).append(`[startup] resuming after step ${from} of ${steps.length}`);
    this.startInstallation(spec, paths, steps, from);
  }

  async stop(spec: EnvironmentSpec): Promise<void> {
    const paths = this.paths(spec.id);
    await this.exclusive(spec.id, () => this.stopLocked(paths));
    this.announce(spec.id);
  }

  async destroy(spec: EnvironmentSpec): Promise<void> {
    const paths = this.paths(spec.id);
    await this.exclusive(spec.id, async () => {
      await this.stopLocked(paths, false);
      await this.logFiles.get(spec.id)?.flushed();
      await removeTree(paths.root);
      this.logFiles.delete(spec.id);
      this.cpuSamples.delete(spec.id);
    });
    this.announce(spec.id);
  }

  async status(spec: EnvironmentSpec): Promise<RuntimeStatus> {
    assertEnvironmentId(spec.id);
    return this.statusOf(spec.id);
  }

  watch(listener: Listener): Unsubscribe {
    this.listeners.add(listener);
    if (this.poller === null && !this.closed) {
      this.baselineTaken = false;
      this.poller = setInterval(() => void this.poll(), this.watchIntervalMs);
      this.poller.unref();
      void this.poll();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  async exec(spec: EnvironmentSpec, argv: string[], options: ExecOptions): Promise<ExecSession> {
    const paths = this.paths(spec.id);
    const workdir = paths.workdir(spec.template.workingDirectory);
    const [command] = argv;
    if (command === undefined || command === '') throw new AppError(RuntimeError.EmptyCommand, 'Nothing to run: the command is empty');
    // Under the environment's lock: a process never starts while a stop is ending every process.
    return this.exclusive(spec.id, async () => {
      const status = await this.statusOf(spec.id);
      if (status.state !== 'running') {
        throw new AppError(RuntimeError.NotRunning, `Environment ${spec.id} is not running (it is ${status.state})`);
      }
      const env = this.environment(spec, paths, await this.shellPath(spec), options.env);
      if ((await findExecutable(command, env.PATH ?? this.hostPath)) === null) {
        throw new AppError(RuntimeError.CommandNotFound, `Command not found in the environment: ${command}`);
      }
      const [file, args] = this.wrap(spec, paths, workdir, options.tty ? 'terminal' : 'process', argv);
      let session: Session;
      if (options.tty) {
        const pty = spawnPty(file, args, {
          name: 'xterm-256color',
          cols: clampTerminalSize(options.cols, 80),
          rows: clampTerminalSize(options.rows, 24),
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

  async logs(spec: EnvironmentSpec, query: LogQuery): Promise<LogPage> {
    const paths = this.paths(spec.id);
    await this.logFiles.get(spec.id)?.flushed();
    return readLogPage(paths.log, query);
  }

  followLogs(spec: EnvironmentSpec, onLine: (line: string) => void, backlog = 0): Unsubscribe {
    return followLog(this.paths(spec.id).log, onLine, backlog);
  }

  async metrics(spec: EnvironmentSpec): Promise<RuntimeMetrics> {
    const paths = this.paths(spec.id);
    if (!(await exists(paths.root))) {
      return { cpuCores: null, memoryBytes: null, diskBytes: null, networkInBytes: null, networkOutBytes: null, at: this.clock.now() };
    }
    let sample = await this.sampleProcesses(spec.id);
    let previous = this.cpuSamples.get(spec.id);
    if (!previous) {
      previous = { at: sample.at, ticks: sample.ticks };
      await delay(CPU_SAMPLE_MS);
      sample = await this.sampleProcesses(spec.id);
    }
    this.cpuSamples.set(spec.id, { at: sample.at, ticks: sample.ticks });
    let ticks = 0;
    for (const [key, now] of sample.ticks) ticks += Math.max(0, now - (previous.ticks.get(key) ?? 0));
    const seconds = Math.max(0.001, (sample.at - previous.at) / 1000);
    const cpuCores = Math.round((ticks / CLOCK_TICKS_PER_SECOND / seconds) * 1000) / 1000;
    return {
      cpuCores,
      memoryBytes: sample.memoryBytes,
      diskBytes: await this.diskUsage(paths.home),
      networkInBytes: null,
      networkOutBytes: null,
      at: this.clock.now(),
    };
  }

  async list(): Promise<string[]> {
    try {
      const entries = await readdir(this.config.localRoot, { withFileTypes: true });
      return entries.filter((entry) => entry.isDirectory() && ENVIRONMENT_ID_PATTERN.test(entry.name)).map((entry) => entry.name);
    } catch {
      return [];
    }
  }

  /** Stops watching, ends the exec sessions it started and interrupts startup scripts; tmux servers keep running. */
  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.stopWatching();
    await Promise.all([...this.installations.keys()].map((id) => this.interruptInstallation(id)));
    await Promise.all([...this.sessions.values()].flatMap((sessions) => [...sessions].map((session) => session.kill())));
    await Promise.all([...this.logFiles.values()].map((log) => log.flushed()));
  }

  // ------------------------------------------------------------------------------------------
  // Workload

  private paths(id: string): EnvironmentPaths {
    return new EnvironmentPaths(this.config.localRoot, id);
  }

  private tmux(paths: EnvironmentPaths): TmuxClient {
    return new TmuxClient(paths.socket, { PATH: this.hostPath, LANG: 'C.UTF-8', HOME: paths.home });
  }

  private log(paths: EnvironmentPaths): EnvironmentLog {
    let log = this.logFiles.get(paths.id);
    if (!log) {
      log = new EnvironmentLog(paths.log, () => this.clock.now());
      this.logFiles.set(paths.id, log);
    }
    return log;
  }

  private async prepareDirectories(paths: EnvironmentPaths, workdir: string): Promise<void> {
    await mkdir(paths.root, { recursive: true, mode: 0o700 });
    const homeIsNew = !(await exists(paths.home));
    await mkdir(paths.home, { recursive: true, mode: 0o700 });
    await chmod(paths.home, 0o700);
    // A familiar shell (prompt, colours, ~/.local/bin on PATH) on distributions that ship a skeleton.
    if (homeIsNew && existsSync('/etc/skel')) {
      await cp('/etc/skel', paths.home, { recursive: true, force: false, errorOnExist: false }).catch(() => undefined);
    }
    await mkdir(paths.tmuxDir, { recursive: true, mode: 0o700 });
    await mkdir(workdir, { recursive: true, mode: 0o700 });
  }

  /** The environment every process of the environment gets. */
  private environment(
    spec: EnvironmentSpec,
    paths: EnvironmentPaths,
    shell: string,
    extra: Record<string, string> = {},
  ): Record<string, string> {
    const home = paths.home;
    return {
      HOME: home,
      USER: this.serverUser,
      LOGNAME: this.serverUser,
      SHELL: shell,
      TERM: 'xterm-256color',
      LANG: 'C.UTF-8',
      PATH: [join(home, '.local', 'bin'), join(home, 'bin'), this.hostPath].join(delimiter),
      ...spec.environmentVariables,
      ...extra,
      TMUX_TMPDIR: paths.tmuxDir,
      [ENVIRONMENT_MARKER]: spec.id,
    };
  }

  /** The shell as an absolute path, or the template's value when it cannot be found (the workload then fails). */
  private async shellPath(spec: EnvironmentSpec): Promise<string> {
    return (await findExecutable(spec.template.shell, this.hostPath)) ?? spec.template.shell;
  }

  /** argv as started on the host: as is, or inside bubblewrap. */
  private wrap(spec: EnvironmentSpec, paths: EnvironmentPaths, workdir: string, role: SandboxRole, argv: string[]): [string, string[]] {
    if (!this.sandboxed) return [argv[0], argv.slice(1)];
    const layout = {
      dataDir: this.app.dataDir,
      localRoot: this.config.localRoot,
      home: paths.home,
      tmuxDir: paths.tmuxDir,
      workdir,
      hostname: LABEL.test(spec.slug) ? spec.slug : 'devpocket',
    };
    return ['bwrap', [...sandboxArguments(layout, role, this.hidden), ...argv]];
  }

  private async missingCommands(spec: EnvironmentSpec, paths: EnvironmentPaths): Promise<string[]> {
    const path = this.environment(spec, paths, spec.template.shell).PATH ?? this.hostPath;
    const missing: string[] = [];
    for (const command of spec.template.requiredCommands) if ((await findExecutable(command, path)) === null) missing.push(command);
    return missing;
  }

  /**
   * Starts the workload unless it runs: the tmux server in the foreground (`tmux -D`, detached
   * from us, in the sandbox when there is one), then, through its socket, the session
   * `devpocket_<id>` running the template's shell as a login shell in the working directory.
   * Records why in state.json when it cannot run.
   */
  private async launch(spec: EnvironmentSpec, paths: EnvironmentPaths, workdir: string): Promise<void> {
    const tmux = this.tmux(paths);
    const session = sessionName(spec.id);
    if (await tmux.hasSession(session)) return;
    this.starting.add(spec.id);
    try {
      const failure = await this.launchServer(spec, paths, workdir, tmux, session);
      await this.updateState(paths, (state) => ({ ...state, failure }));
      if (failure !== null) await this.log(paths).append(`[runtime] cannot start: ${failure}`);
    } finally {
      this.starting.delete(spec.id);
    }
  }

  private async launchServer(
    spec: EnvironmentSpec,
    paths: EnvironmentPaths,
    workdir: string,
    tmux: TmuxClient,
    session: string,
  ): Promise<string | null> {
    const shell = await findExecutable(spec.template.shell, this.hostPath);
    if (shell === null) return `the shell ${spec.template.shell} does not exist on this host`;
    // A server without our session (the user ended it but kept another one), or a socket left by a dead server.
    if (await tmux.listening()) await tmux.killServer();
    await rm(paths.socket, { force: true });

    const conf = join(paths.tmuxDir, 'devpocket.tmux.conf');
    await mkdir(paths.tmuxDir, { recursive: true, mode: 0o700 });
    await writeFile(conf, TMUX_CONF, { mode: 0o600 });
    const [file, args] = this.wrap(spec, paths, workdir, 'workload', ['tmux', '-f', conf, '-D']);
    const child = spawn(file, args, {
      cwd: workdir,
      env: this.environment(spec, paths, shell),
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
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
    const created = await tmux.run('new-session', '-d', '-s', session, '-c', workdir, ';', 'set-option', '-s', 'exit-empty', 'on');
    if (created.code !== 0) {
      await tmux.killServer();
      child.kill('SIGKILL');
      release();
      return `tmux could not create the session: ${created.stderr.trim() || `exit code ${created.code}`}`;
    }
    release();
    await this.log(paths).append(
      `[runtime] started: tmux session ${session} running ${shell}${this.sandboxed ? ' (bubblewrap sandbox)' : ''}`,
    );
    return null;
  }

  private async stopLocked(paths: EnvironmentPaths, announce = true): Promise<void> {
    if (!(await exists(paths.root))) return;
    await this.interruptInstallation(paths.id);
    const tmux = this.tmux(paths);
    const wasRunning = await tmux.listening();
    if (wasRunning) await tmux.killServer();
    await Promise.all([...(this.sessions.get(paths.id) ?? [])].map((session) => session.kill()));
    const leftovers = await killEnvironmentProcesses(paths.id);
    await rm(paths.socket, { force: true });
    if (announce && (wasRunning || leftovers > 0)) await this.log(paths).append('[runtime] stopped');
  }

  // ------------------------------------------------------------------------------------------
  // Startup script

  private startInstallation(spec: EnvironmentSpec, paths: EnvironmentPaths, steps: string[], from = 0): void {
    const controller = new AbortController();
    const done = this.install(spec, paths, steps, controller.signal, from)
      .catch((error: unknown) => {
        this.logger.error(`Startup script of environment ${spec.id} failed: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => {
        if (this.installations.get(spec.id)?.controller === controller) this.installations.delete(spec.id);
      });
    this.installations.set(spec.id, { controller, done });
  }

  /** Runs the user-level steps one by one in the home directory; a failing step is recorded and the next one still runs. */
  private async install(spec: EnvironmentSpec, paths: EnvironmentPaths, steps: string[], signal: AbortSignal, from = 0): Promise<void> {
    const log = this.log(paths);
    const total = steps.length;
    const shell = await this.shellPath(spec);
    for (const [index, step] of steps.entries()) {
      if (signal.aborted) break;
      if (index < from) continue;
      const number = index + 1;
      const [first = '', ...rest] = step.split('\n');
      await log.append(`[startup ${number}/${total}] $ ${first}`, ...rest.map((line) => `[startup ${number}/${total}] > ${line}`));
      const code = await this.runLogged(spec, paths, shell, ['bash', '-lc', step], log, signal);
      if (signal.aborted) break;
      if (code !== 0) await log.append(`[startup ${number}/${total}] failed with exit code ${code ?? 'unknown'}`);
      await this.updateState(paths, (state) => ({
        ...state,
        installation: {
          ...state.installation,
          stepsDone: number,
          failedSteps: code === 0 ? state.installation.failedSteps : [...state.installation.failedSteps, number],
        },
      }));
    }
    if (signal.aborted) {
      await this.updateState(paths, (state) => ({ ...state, installation: { ...state.installation, interrupted: true, runner: null } }));
      await log.append('[startup] interrupted');
      return;
    }
    const missingCommands = await this.missingCommands(spec, paths);
    const final = await this.updateState(paths, (state) => ({
      ...state,
      missingCommands,
      installation: { ...state.installation, completed: true, runner: null },
    }));
    const failed = final?.installation.failedSteps ?? [];
    await log.append(
      failed.length === 0
        ? `[startup] finished: ${total} step(s) succeeded`
        : `[startup] finished: ${describeSteps(failed)} of ${total} failed`,
      ...(missingCommands.length > 0 ? [`[runtime] missing commands: ${missingCommands.join(', ')}`] : []),
    );
  }

  /** Runs argv (sandboxed like exec) with its output going to the log, line by line; resolves with the exit code. */
  private runLogged(
    spec: EnvironmentSpec,
    paths: EnvironmentPaths,
    shell: string,
    argv: string[],
    log: EnvironmentLog,
    signal: AbortSignal,
  ): Promise<number | null> {
    const [file, args] = this.wrap(spec, paths, paths.home, 'process', argv);
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(file, args, {
          cwd: paths.home,
          env: this.environment(spec, paths, shell),
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
      } catch (error) {
        void log.append(`[startup] cannot run: ${error instanceof Error ? error.message : String(error)}`);
        resolve(null);
        return;
      }
      const splitters = [child.stdout, child.stderr].map((output) => {
        const splitter = new LineSplitter((line) => void log.append(line));
        output?.on('data', (chunk: Buffer) => splitter.write(chunk));
        return splitter;
      });
      const kill = (): void => {
        const group = child.pid;
        if (group === undefined) return;
        try {
          process.kill(-group, 'SIGKILL');
        } catch {
          // Already gone.
        }
      };
      signal.addEventListener('abort', kill, { once: true });
      child.once('error', (error) => {
        void log.append(`[startup] cannot run: ${error.message}`);
      });
      child.once('close', (code) => {
        signal.removeEventListener('abort', kill);
        for (const splitter of splitters) splitter.end();
        void log.flushed().then(() => resolve(code));
      });
    });
  }

  private async interruptInstallation(id: string): Promise<void> {
    const installation = this.installations.get(id);
    if (!installation) return;
    installation.controller.abort();
    await installation.done;
  }

  // ------------------------------------------------------------------------------------------
  // Status and watch

  /**
   * `quick` (the watcher's polls) only checks that the environment's tmux server answers on its
   * socket, without starting a process: with `exit-empty on` the server lives exactly as long as
   * it has a session. Explicit status requests also ask tmux for the DevPocket session itself.
   */
  private async statusOf(id: string, quick = false): Promise<RuntimeStatus> {
    const paths = this.paths(id);
    if (!(await exists(paths.root))) return { state: 'absent', message: null, installation: null };
    const state = await readState(paths.state);
    const notes: string[] = [];
    let installation: RuntimeStatus['installation'] = null;
    if (state) {
      const { installation: progress } = state;
      const orphaned = !progress.completed && !progress.interrupted && progress.runner !== null && !(await isAlive(progress.runner));
      const interrupted = progress.interrupted || orphaned;
      installation = {
        completed: progress.completed,
        failed: interrupted || progress.failedSteps.length > 0,
        stepsDone: progress.stepsDone,
        stepsTotal: progress.stepsTotal,
      };
      notes.push(
        ...installationNotes({
          stepsDone: progress.stepsDone,
          stepsTotal: progress.stepsTotal,
          failedSteps: progress.failedSteps,
          interrupted,
          missingCommands: state.missingCommands,
        }),
      );
    }
    const message = notes.length > 0 ? notes.join('; ') : null;
    if (this.starting.has(id)) return { state: 'pending', message, installation };
    if (state?.failure) return { state: 'failed', message: [state.failure, ...notes].join('; '), installation };
    const tmux = this.tmux(paths);
    const running = quick ? await tmux.listening() : await tmux.hasSession(sessionName(id));
    return { state: running ? 'running' : 'stopped', message, installation };
  }

  private stopWatching(): void {
    if (this.poller !== null) clearInterval(this.poller);
    this.poller = null;
    this.known.clear();
  }

  private poll(): Promise<void> {
    if (this.polling) return this.polling;
    this.polling = (async () => {
      try {
        const ids = new Set([...(await this.list()), ...this.known.keys()]);
        for (const id of ids) {
          if (this.listeners.size === 0) return;
          await this.observe(id, this.baselineTaken);
        }
        this.baselineTaken = true;
      } catch (error) {
        this.logger.warn(`Watching environments failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        this.polling = null;
      }
    })();
    return this.polling;
  }

  /** After an operation: tells the watchers at once instead of at the next poll. */
  private announce(id: string): void {
    if (this.listeners.size > 0) void this.observe(id, true).catch(() => undefined);
  }

  /**
   * Looks at one environment and tells the watchers when its status differs from the last one
   * seen. Observations run one at a time, so a slow poll never reports an older status after a
   * newer one. An environment seen for the first time is reported only when `announceNew` (after
   * an operation, or once the first poll has recorded what already existed).
   */
  private observe(id: string, announceNew: boolean): Promise<void> {
    const next = this.observing.then(async () => {
      if (this.listeners.size === 0) return;
      const status = await this.statusOf(id, true);
      const key = JSON.stringify(status);
      const previous = this.known.get(id);
      if (status.state === 'absent') this.known.delete(id);
      else this.known.set(id, key);
      if (previous === key) return;
      if (previous === undefined && (status.state === 'absent' || !announceNew)) return;
      for (const listener of [...this.listeners]) {
        try {
          listener(id, status);
        } catch (error) {
          this.logger.error(`A runtime watcher failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    });
    this.observing = next.catch(() => undefined);
    return next;
  }

  // ------------------------------------------------------------------------------------------
  // Bookkeeping

  /** Runs operations on one environment one at a time (within this instance). */
  private async exclusive<T>(id: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.locks.set(id, tail);
    await previous;
    try {
      return await operation();
    } finally {
      release();
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  /**
   * Read-modify-write of state.json, serialised per environment. Without `create`, an environment
   * whose state is gone (destroyed) is left alone.
   */
  private updateState(
    paths: EnvironmentPaths,
    change: (state: LocalEnvironmentState) => LocalEnvironmentState,
    create = false,
  ): Promise<LocalEnvironmentState | null> {
    const previous = this.stateWrites.get(paths.id) ?? Promise.resolve();
    const result = previous.then(async () => {
      const current = await readState(paths.state);
      if (current === null && !create) return null;
      const next = change(current ?? ({} as LocalEnvironmentState));
      try {
        await writeState(paths.state, next);
      } catch {
        return null;
      }
      return next;
    });
    const tail = result.then(() => undefined);
    this.stateWrites.set(paths.id, tail);
    void tail.then(() => {
      if (this.stateWrites.get(paths.id) === tail) this.stateWrites.delete(paths.id);
    });
    return result;
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

  private async sampleProcesses(id: string): Promise<{ at: number; ticks: Map<string, number>; memoryBytes: number }> {
    const { pids, table } = await environmentProcesses(id);
    const at = Date.now();
    const ticks = new Map<string, number>();
    let memoryBytes = 0;
    await Promise.all(
      [...pids].map(async (pid) => {
        const info = table.get(pid);
        if (info) ticks.set(`${pid}:${info.startTime}`, info.cpuTicks);
        memoryBytes += (await residentBytes(pid)) ?? 0;
      }),
    );
    return { at, ticks, memoryBytes };
  }

  /** Apparent size of the home directory (`du -sb`, argv); null when it cannot be measured. */
  private async diskUsage(home: string): Promise<number | null> {
    const result = await run('du', ['-s', '-b', '--', home], { PATH: this.hostPath, LANG: 'C' }, DISK_TIMEOUT_MS);
    const bytes = Number(result.stdout.trim().split(/\s+/)[0]);
    return result.stdout.trim() !== '' && Number.isFinite(bytes) ? bytes : null;
  }
}
