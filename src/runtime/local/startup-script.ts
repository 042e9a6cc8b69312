import { ChildProcess, spawn } from 'node:child_process';
import { Logger } from '@nestjs/common';
import { describeSteps } from '../installation.js';
import { LineSplitter } from '../log-lines.js';
import type { EnvironmentSpec } from '../runtime.provider.js';
import type { EnvironmentLog } from './environment-log.js';
import type { EnvironmentPaths } from './environment-paths.js';
import type { LocalEnvironmentState, StateStore } from './environment-state.js';
import type { LocalHost } from './local-host.js';
import type { LocalLogs } from './local-logs.js';
import { selfIdentity } from './process-tree.js';
import { guardChildStdio } from '../../common/process/child-stdio.js';

interface Installation {
  controller: AbortController;
  done: Promise<void>;
}

/**
 * The template's user-level startup steps, run in the background one by one as `bash -lc <step>`
 * in the home directory (sandboxed like exec), output to the environment's log, progress in
 * state.json after each step. A failing step is recorded and the next one still runs. A script
 * cut short (stop, shutdown, or the death of the server, recognised by its recorded runner)
 * continues at its first unfinished step. Owns the scripts running in this process.
 */
export class StartupScript {
  private readonly logger = new Logger('LocalRuntime');
  private readonly running = new Map<string, Installation>();

  constructor(
    private readonly host: LocalHost,
    private readonly state: StateStore,
    private readonly logs: LocalLogs,
  ) {}

  /** The progress a new provisioning records: nothing done yet, run by this process when there is something to run. */
  async initialProgress(steps: string[]): Promise<LocalEnvironmentState['installation']> {
    return {
      stepsTotal: steps.length,
      stepsDone: 0,
      failedSteps: [],
      completed: steps.length === 0,
      interrupted: false,
      runner: steps.length === 0 ? null : await selfIdentity(),
    };
  }

  /** Starts the steps from `from` (0-based) in the background. */
  start(spec: EnvironmentSpec, paths: EnvironmentPaths, steps: string[], from = 0): void {
    const controller = new AbortController();
    const done = this.install(spec, paths, steps, controller.signal, from)
      .catch((error: unknown) => {
        this.logger.error(`Startup script of environment ${spec.id} failed: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => {
        if (this.running.get(spec.id)?.controller === controller) this.running.delete(spec.id);
      });
    this.running.set(spec.id, { controller, done });
  }

  /**
   * A startup script cut short (the environment was stopped, or the server died) continues with
   * its first unfinished step when the environment starts again.
   */
  async resume(spec: EnvironmentSpec, paths: EnvironmentPaths): Promise<void> {
    const state = await this.state.read(paths);
    if (!state || state.installation.completed || this.running.has(spec.id)) return;
    const steps = spec.template.startup.user;
    const from = Math.min(state.installation.stepsDone, steps.length);
    const runner = await selfIdentity();
    await this.state.update(paths, (current) => ({ ...current, installation: { ...current.installation, interrupted: false, runner } }));
    await this.logs.writer(paths).append(`[startup] resuming after step ${from} of ${steps.length}`);
    this.start(spec, paths, steps, from);
  }

  /** Stops the environment's running script, if any (recorded as interrupted); resolves once it has ended. */
  async interrupt(id: string): Promise<void> {
    const installation = this.running.get(id);
    if (!installation) return;
    installation.controller.abort();
    await installation.done;
  }

  async interruptAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.interrupt(id)));
  }

  /** Runs the user-level steps one by one in the home directory; a failing step is recorded and the next one still runs. */
  private async install(spec: EnvironmentSpec, paths: EnvironmentPaths, steps: string[], signal: AbortSignal, from = 0): Promise<void> {
    const log = this.logs.writer(paths);
    const total = steps.length;
    const shell = await this.host.shellPath(spec);
    for (const [index, step] of steps.entries()) {
      if (signal.aborted) break;
      if (index < from) continue;
      const number = index + 1;
      const [first = '', ...rest] = step.split('\n');
      await log.append(`[startup ${number}/${total}] $ ${first}`, ...rest.map((line) => `[startup ${number}/${total}] > ${line}`));
      const code = await this.runLogged(spec, paths, shell, ['bash', '-lc', step], log, signal);
      if (signal.aborted) break;
      if (code !== 0) await log.append(`[startup ${number}/${total}] failed with exit code ${code ?? 'unknown'}`);
      await this.state.update(paths, (state) => ({
        ...state,
        installation: {
          ...state.installation,
          stepsDone: number,
          failedSteps: code === 0 ? state.installation.failedSteps : [...state.installation.failedSteps, number],
        },
      }));
    }
    if (signal.aborted) {
      await this.state.update(paths, (state) => ({ ...state, installation: { ...state.installation, interrupted: true, runner: null } }));
      await log.append('[startup] interrupted');
      return;
    }
    const missingCommands = await this.host.missingCommands(spec, paths);
    const final = await this.state.update(paths, (state) => ({
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
    const [file, args] = this.host.wrap(spec, paths, paths.home, 'process', argv);
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(file, args, {
          cwd: paths.home,
          env: this.host.environment(spec, paths, shell),
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
      } catch (error) {
        void log.append(`[startup] cannot run: ${error instanceof Error ? error.message : String(error)}`);
        resolve(null);
        return;
      }
      guardChildStdio(child);
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
}
