import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, rm } from 'node:fs/promises';
import type { Clock } from '../../common/clock/clock.js';
import { AppError } from '../../common/errors/app-error.js';
import { specHash } from '../installation.js';
import type { KeyedLock } from '../keyed-lock.js';
import { RuntimeError } from '../runtime.errors.js';
import type { EnvironmentSpec } from '../runtime.provider.js';
import type { EnvironmentPaths } from './environment-paths.js';
import type { LocalEnvironmentState, StateStore } from './environment-state.js';
import { exists, removeTree } from './files.js';
import type { LocalExec } from './local-exec.js';
import type { LocalHost } from './local-host.js';
import type { LocalLogs } from './local-logs.js';
import { killEnvironmentProcesses } from './process-tree.js';
import type { StartupScript } from './startup-script.js';
import type { TmuxWorkload } from './workload.js';

export interface LocalLifecycleParts {
  host: LocalHost;
  /** Per-environment serialisation, shared with exec (a process never starts while a stop ends every process). */
  lock: KeyedLock;
  state: StateStore;
  logs: LocalLogs;
  workload: TmuxWorkload;
  startup: StartupScript;
  exec: LocalExec;
  clock: Clock;
}

/**
 * provision, start, stop and destroy on this host, one at a time per environment: the
 * directories, state.json, the workload (tmux server), the startup script, and ending every
 * process of the environment on stop.
 */
export class LocalLifecycle {
  constructor(private readonly parts: LocalLifecycleParts) {}

  async provision(spec: EnvironmentSpec): Promise<void> {
    const { host, lock, state, logs, workload, startup, clock } = this.parts;
    const paths = host.paths(spec.id);
    const workdir = paths.workdir(spec.template.workingDirectory);
    await lock.run(spec.id, async () => {
      await this.prepareDirectories(paths, workdir);
      const hash = specHash(spec);
      const existing = await state.read(paths);
      if (existing?.specHash === hash) {
        await workload.launch(spec, paths, workdir);
        await startup.resume(spec, paths);
        return;
      }
      await startup.interrupt(spec.id);
      const log = logs.writer(paths);
      const { template } = spec;
      await log.append(`[runtime] provisioning from template ${template.name} ${template.version}`);
      if (template.startup.system.length > 0) {
        await log.append(
          `[runtime] skipped ${template.startup.system.length} system-level startup step(s): the local runtime never runs them on the host`,
          ...template.startup.system.map((step) => `[runtime]   skipped: ${step.split('\n').join(' ')}`),
        );
      }
      const missingCommands = await host.missingCommands(spec, paths);
      if (missingCommands.length > 0) await log.append(`[runtime] missing commands: ${missingCommands.join(', ')}`);
      const steps = template.startup.user;
      const fresh: LocalEnvironmentState = {
        version: 1,
        specHash: hash,
        provisionedAt: clock.now().toISOString(),
        installation: await startup.initialProgress(steps),
        missingCommands,
        failure: null,
      };
      await state.update(paths, () => fresh, true);
      await workload.launch(spec, paths, workdir);
      if (steps.length > 0) startup.start(spec, paths, steps);
    });
  }

  async start(spec: EnvironmentSpec): Promise<void> {
    const { host, lock, state, logs, workload, startup } = this.parts;
    const paths = host.paths(spec.id);
    const workdir = paths.workdir(spec.template.workingDirectory);
    await lock.run(spec.id, async () => {
      if (!(await exists(paths.root))) throw new AppError(RuntimeError.NotProvisioned, `Environment ${spec.id} is not provisioned`);
      await this.prepareDirectories(paths, workdir);
      const missingCommands = await host.missingCommands(spec, paths);
      const recorded = await state.read(paths);
      if (recorded && recorded.missingCommands.join(',') !== missingCommands.join(',')) {
        await state.update(paths, (current) => ({ ...current, missingCommands }));
        await logs
          .writer(paths)
          .append(
            missingCommands.length > 0
              ? `[runtime] missing commands: ${missingCommands.join(', ')}`
              : '[runtime] every required command is available',
          );
      }
      await workload.launch(spec, paths, workdir);
      await startup.resume(spec, paths);
    });
  }

  async stop(spec: EnvironmentSpec): Promise<void> {
    const paths = this.parts.host.paths(spec.id);
    await this.parts.lock.run(spec.id, () => this.stopLocked(paths));
  }

  async destroy(spec: EnvironmentSpec): Promise<void> {
    const { host, lock, logs } = this.parts;
    const paths = host.paths(spec.id);
    await lock.run(spec.id, async () => {
      await this.stopLocked(paths, false);
      await logs.flushed(spec.id);
      await removeTree(paths.root);
      logs.forget(spec.id);
    });
  }

  /**
   * Ends the startup script (recorded as interrupted), the tmux server, the exec sessions, and
   * every process left that carries the environment's marker.
   */
  private async stopLocked(paths: EnvironmentPaths, announce = true): Promise<void> {
    if (!(await exists(paths.root))) return;
    const { logs, workload, startup, exec } = this.parts;
    await startup.interrupt(paths.id);
    const wasRunning = await workload.end(paths);
    await exec.killAll(paths.id);
    const leftovers = await killEnvironmentProcesses(paths.id);
    await rm(paths.socket, { force: true });
    if (announce && (wasRunning || leftovers > 0)) await logs.writer(paths).append('[runtime] stopped');
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
}
