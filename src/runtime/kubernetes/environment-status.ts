import type { V1StatefulSet } from '@kubernetes/client-node';
import { installationNotes } from '../installation.js';
import type { RuntimeStatus } from '../runtime.provider.js';
import { reasonOf } from './kubernetes-api.js';
import { ANNOTATION_INSTALLATION } from './manifests.js';
import type { EnvironmentObjects } from './objects.js';
import { oomKillsInside, outOfMemoryNote } from './out-of-memory.js';
import type { Located } from './placement.js';
import type { PodExec } from './pod-exec.js';
import { parseKeyValues, STATUS_SCRIPT } from './pod-scripts.js';

export interface Progress {
  stepsDone: number;
  stepsTotal: number;
  failedSteps: number[];
  completed: boolean;
}

/** `<spec hash> <done> <total> <failed steps or ->`, as the entrypoint writes it. */
function parseProgress(line: string | undefined): (Progress & { hash: string }) | null {
  if (!line) return null;
  const [hash, done, total, failed] = line.trim().split(/\s+/);
  const stepsDone = Number(done);
  const stepsTotal = Number(total);
  if (!hash || !Number.isInteger(stepsDone) || !Number.isInteger(stepsTotal)) return null;
  const failedSteps = !failed || failed === '-' ? [] : failed.split(',').map(Number).filter(Number.isInteger);
  return { hash, stepsDone, stepsTotal, failedSteps, completed: stepsDone >= stepsTotal };
}

function toInstallation(progress: Progress | null, interrupted: boolean): RuntimeStatus['installation'] {
  if (!progress) return null;
  return {
    completed: progress.completed,
    failed: progress.failedSteps.length > 0 || (interrupted && !progress.completed),
    stepsDone: progress.stepsDone,
    stepsTotal: progress.stepsTotal,
  };
}

function joinNotes(notes: (string | null)[]): string | null {
  const present = notes.filter((note): note is string => note !== null && note !== '');
  return present.length > 0 ? present.join('; ') : null;
}

export const ABSENT: RuntimeStatus = { state: 'absent', message: null, installation: null };

/**
 * An environment's status on the cluster: from the API objects (viewPod) and, for a running
 * container, one exec of `scripts/status.sh` that asks the entrypoint how far it got (ready and
 * failure markers, startup progress, missing commands) and counts the processes killed for
 * memory (out-of-memory.ts). A stopped environment's progress is the one its last stop saved on
 * the StatefulSet.
 */
export class KubernetesStatus {
  constructor(
    private readonly objects: EnvironmentObjects,
    private readonly exec: PodExec,
  ) {}

  /** `hash` (of the spec) rejects progress of another template version; null accepts any. */
  async of(at: Located, hash: string | null): Promise<RuntimeStatus> {
    const { workload, pod, view } = await this.objects.inspect(at);
    if (!workload) {
      const [claim, config] = await Promise.all([this.objects.readClaim(at), this.objects.readConfigMap(at)]);
      if (!claim && !config && !pod) return ABSENT;
      return { state: 'stopped', message: 'incomplete: the StatefulSet is missing (a start creates it again)', installation: null };
    }
    const saved = this.savedProgress(workload, hash);
    if (view.state !== 'running') {
      const interrupted = view.state === 'stopped' && saved !== null && !saved.completed;
      const notes = saved ? installationNotes({ ...saved, interrupted, missingCommands: [] }) : [];
      // A container killed for memory and being restarted (a crash loop says so in its own message).
      const memory = view.state === 'pending' ? outOfMemoryNote(pod, null) : null;
      return {
        state: view.state,
        message: joinNotes([view.state === 'failed' ? view.message : null, memory, ...notes]),
        installation: toInstallation(saved, interrupted),
      };
    }
    let inside: Map<string, string>;
    try {
      inside = parseKeyValues((await this.exec.run(at, ['sh', '-c', STATUS_SCRIPT])).text);
    } catch (error) {
      return {
        state: 'pending',
        message: `waiting for the container to answer: ${reasonOf(error)}`,
        installation: toInstallation(saved, false),
      };
    }
    let progress = parseProgress(inside.get('installation'));
    if (progress && hash !== null && progress.hash !== hash) progress = null;
    const missingCommands = (inside.get('missing') ?? '').split(' ').filter(Boolean);
    const notes = installationNotes({
      stepsDone: progress?.stepsDone ?? 0,
      stepsTotal: progress?.stepsTotal ?? 0,
      failedSteps: progress?.failedSteps ?? [],
      interrupted: false,
      missingCommands,
    });
    const installation = toInstallation(progress, false);
    const failure = inside.get('failure');
    if (failure) return { state: 'failed', message: joinNotes([`the workload cannot run: ${failure}`, ...notes]), installation };
    const memory = outOfMemoryNote(pod, oomKillsInside(inside));
    if (!inside.has('ready')) return { state: 'pending', message: joinNotes([memory, ...notes]), installation };
    return { state: 'running', message: joinNotes([memory, ...notes]), installation };
  }

  /** The entrypoint's progress file, for the annotation a stop leaves behind. */
  async readProgress(at: Located): Promise<(Progress & { hash: string }) | null> {
    const inside = parseKeyValues((await this.exec.run(at, ['sh', '-c', STATUS_SCRIPT])).text);
    return parseProgress(inside.get('installation'));
  }

  private savedProgress(workload: V1StatefulSet, hash: string | null): Progress | null {
    const raw = workload.metadata?.annotations?.[ANNOTATION_INSTALLATION];
    if (!raw) return null;
    try {
      const saved = JSON.parse(raw) as Progress & { hash?: string };
      if (hash !== null && saved.hash !== undefined && saved.hash !== hash) return null;
      return saved;
    } catch {
      return null;
    }
  }
}
