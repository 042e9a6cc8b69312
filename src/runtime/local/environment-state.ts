import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';

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
