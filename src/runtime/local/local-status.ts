import { installationNotes } from '../installation.js';
import type { RuntimeStatus } from '../runtime.provider.js';
import type { StateStore } from './environment-state.js';
import { exists } from './files.js';
import type { LocalHost } from './local-host.js';
import { isAlive } from './process-tree.js';
import type { TmuxWorkload } from './workload.js';

/**
 * An environment's status on this host: `absent` (no directory), `failed` (recorded in
 * state.json, e.g. the shell does not exist), `pending` (being started), `running` (its tmux
 * server has the session), else `stopped`; the message and progress come from state.json.
 */
export class LocalStatus {
  constructor(
    private readonly host: LocalHost,
    private readonly state: StateStore,
    private readonly workload: TmuxWorkload,
  ) {}

  /**
   * `quick` (the watcher's polls) only checks that the environment's tmux server answers on its
   * socket, without starting a process: with `exit-empty on` the server lives exactly as long as
   * it has a session. Explicit status requests also ask tmux for the DevPocket session itself.
   */
  async of(id: string, quick = false): Promise<RuntimeStatus> {
    const paths = this.host.paths(id);
    if (!(await exists(paths.root))) return { state: 'absent', message: null, installation: null };
    const state = await this.state.read(paths);
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
    if (this.workload.isStarting(id)) return { state: 'pending', message, installation };
    if (state?.failure) return { state: 'failed', message: [state.failure, ...notes].join('; '), installation };
    const running = quick ? await this.workload.listening(paths) : await this.workload.hasSession(paths);
    return { state: running ? 'running' : 'stopped', message, installation };
  }
}
