import { spawnSync } from 'node:child_process';
import { constants as fsConstants, mkdirSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { Logger } from '@nestjs/common';
import type { AppConfig } from '../../config/namespaces/app.config.js';
import type { RuntimeConfig } from '../../config/namespaces/runtime.config.js';
import type { EnvironmentSpec, RuntimeReadiness } from '../runtime.provider.js';
import { EnvironmentPaths, MAX_SOCKET_PATH_BYTES } from './environment-paths.js';
import { ENVIRONMENT_MARKER } from './process-tree.js';
import { hiddenPaths, sandboxArguments, SandboxRole } from './sandbox.js';
import { run, TmuxClient, tmuxVersionAtLeast } from './tmux.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function serverUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? `uid${process.getuid?.() ?? 0}`;
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

/**
 * This host as the local runtime uses it: where environments live, and how every process of an
 * environment (workload, startup steps, exec) is started: with the same environment, and inside
 * bubblewrap when LOCAL_SANDBOX=bwrap. Checks at construction that the host can run environments.
 *
 * The environment: HOME, USER, LOGNAME, SHELL, TERM, LANG, PATH, then the spec's variables, then
 * TMUX_TMPDIR and DEVPOCKET_ENVIRONMENT_ID (which the runtime relies on and which cannot be
 * overridden). Processes run as the server's own OS user: the template's user/uid are for containers.
 */
export class LocalHost {
  private readonly logger = new Logger('LocalRuntime');
  readonly sandboxed: boolean;
  private readonly hidden: string[];
  private readonly serverUser = serverUserName();

  constructor(
    private readonly config: RuntimeConfig,
    private readonly app: AppConfig,
    /** Where the runtime finds programs (tmux, bwrap), and the tail of every environment's PATH: by default the server's PATH. */
    readonly hostPath: string = process.env.PATH ?? DEFAULT_PATH,
  ) {
    this.sandboxed = config.localSandbox === 'bwrap';
    this.checkHost();
    mkdirSync(config.localRoot, { recursive: true, mode: 0o700 });
    this.hidden = this.sandboxed ? hiddenPaths({ dataDir: app.dataDir, localRoot: config.localRoot }) : [];
  }

  /** Refuses to boot on a host that cannot run environments, with a message that says what to install or change. */
  private checkHost(): void {
    const env = { ...process.env, PATH: this.hostPath };
    const tmux = spawnSync('tmux', ['-V'], { encoding: 'utf8', env });
    if (tmux.error || tmux.status !== 0) {
      throw new Error('The local runtime needs tmux 3.2 or newer on PATH (e.g. `apt-get install tmux`); tmux was not found');
    }
    if (!tmuxVersionAtLeast(tmux.stdout, 3, 2)) {
      throw new Error(`The local runtime needs tmux 3.2 or newer (found ${tmux.stdout.trim()})`);
    }
    if (this.sandboxed) {
      const bwrap = spawnSync('bwrap', ['--version'], { encoding: 'utf8', env });
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

  /**
   * The readiness check: tmux is still on PATH and runs (`tmux -V` within `timeoutMs`), and the
   * environments' directory is writable. (The boot checks this too; a host can lose either later.)
   */
  async ready(timeoutMs: number): Promise<RuntimeReadiness> {
    const tmux = await findExecutable('tmux', this.hostPath);
    if (tmux === null) return { ready: false, detail: 'tmux was not found on PATH' };
    const version = await run(tmux, ['-V'], { PATH: this.hostPath, LANG: 'C.UTF-8' }, timeoutMs);
    if (version.code !== 0) {
      return { ready: false, detail: `tmux does not run (${tmux} -V: ${version.stderr.trim() || `exit code ${version.code}`})` };
    }
    try {
      await access(this.config.localRoot, fsConstants.W_OK);
    } catch {
      return { ready: false, detail: `the environments' directory ${this.config.localRoot} is not writable` };
    }
    return { ready: true, detail: version.stdout.trim() };
  }

  /** Where the environment lives (validates the id). */
  paths(id: string): EnvironmentPaths {
    return new EnvironmentPaths(this.config.localRoot, id);
  }

  /** The runtime's own tmux client for the environment's server (never starts one). */
  tmux(paths: EnvironmentPaths): TmuxClient {
    return new TmuxClient(paths.socket, { PATH: this.hostPath, LANG: 'C.UTF-8', HOME: paths.home });
  }

  /** The environment every process of the environment gets. */
  environment(spec: EnvironmentSpec, paths: EnvironmentPaths, shell: string, extra: Record<string, string> = {}): Record<string, string> {
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
  async shellPath(spec: EnvironmentSpec): Promise<string> {
    return (await findExecutable(spec.template.shell, this.hostPath)) ?? spec.template.shell;
  }

  /** argv as started on the host: as is, or inside bubblewrap. */
  wrap(spec: EnvironmentSpec, paths: EnvironmentPaths, workdir: string, role: SandboxRole, argv: string[]): [string, string[]] {
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

  /** The template's required commands that are not on the environment's PATH. */
  async missingCommands(spec: EnvironmentSpec, paths: EnvironmentPaths): Promise<string[]> {
    const path = this.environment(spec, paths, spec.template.shell).PATH ?? this.hostPath;
    const missing: string[] = [];
    for (const command of spec.template.requiredCommands) if ((await findExecutable(command, path)) === null) missing.push(command);
    return missing;
  }
}
