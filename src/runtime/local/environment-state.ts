import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { KeyedLock } from '../keyed-lock.js';
import type { EnvironmentPaths } from './environment-paths.js';

/** What the local runtime remembers about one environment, in `<localRoot>/<id>/state.json`. */
export interface LocalEnvironmentState {
  version: 1;
  /** Hash of what a provision installs (template, version, startup steps): a provision with the same hash is a no-op. */
  specHash: string;
  provisionedAt: string;
  installation: {
    stepsTotal: number;
    stepsDone: number;
    /** 1-based numbers of the user-level steps that failed. */
    failedSteps: number[];
    completed: boolean;
    /** Set when the script was stopped before its end (stop, destroy, server shutdown). */
    interrupted: boolean;
    /** The process running the script, recognised by pid and start time; null once it ended. */
    runner: { pid: number; startTime: number } | null;
  };
  /** Required commands not found on the environment's PATH at the last check. */
  missingCommands: string[];
  /** Why the workload cannot run (e.g. the shell does not exist); null when it can. */
  failure: string | null;
}

export async function readState(path: string): Promise<LocalEnvironmentState | null> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as LocalEnvironmentState;
    return parsed.version === 1 ? parsed : null;
  } catch {
    return null;
  }
}

/** Writes atomically (temporary file, then rename), so a crash never leaves half a file. */
export async function writeState(path: string, state: LocalEnvironmentState): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
}

/** state.json of every environment, with read-modify-write serialised per environment. */
export class StateStore {
  private readonly writes = new KeyedLock();

  read(paths: EnvironmentPaths): Promise<LocalEnvironmentState | null> {
    return readState(paths.state);
  }

  /**
   * Applies `change` to the current state and writes the result; resolves with it, or null when
   * nothing was written. Without `create`, an environment whose state is gone (destroyed) is left alone.
   */
  update(
    paths: EnvironmentPaths,
    change: (state: LocalEnvironmentState) => LocalEnvironmentState,
    create = false,
  ): Promise<LocalEnvironmentState | null> {
    return this.writes.run(paths.id, async () => {
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
  }
}
