import type { V1Pod } from '@kubernetes/client-node';
import type { RuntimeState } from '../runtime.provider.js';
import { CONTAINER_NAME } from './manifests.js';

/** Waiting reasons after which the container will not start without someone changing something. */
const FAILING_WAIT_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

export interface PodView {
  /** `running` here means the container runs: the runtime then asks inside whether the entrypoint is ready. */
  state: RuntimeState;
  message: string | null;
}

/**
 * What a pod of an environment says about it, from the API object alone (no exec): scheduling,
 * image pulls, crash loops, and whether the workspace container runs. `wanted` is the
 * StatefulSet's replica count: with 0, any pod left is on its way out.
 */
export function viewPod(pod: V1Pod | null, wanted: number): PodView {
  if (wanted === 0) return pod ? { state: 'pending', message: 'stopping' } : { state: 'stopped', message: null };
  if (!pod) return { state: 'pending', message: null };
  if (pod.metadata?.deletionTimestamp) return { state: 'pending', message: 'the pod is being replaced' };

  const status = pod.status;
  const container = status?.containerStatuses?.find((each) => each.name === CONTAINER_NAME) ?? status?.containerStatuses?.[0];
  const waiting = container?.state?.waiting;
  if (waiting?.reason && FAILING_WAIT_REASONS.has(waiting.reason)) {
    const image = container?.image ?? pod.spec?.containers[0]?.image ?? 'the image';
    const detail = waiting.message ? `: ${waiting.message}` : '';
    if (waiting.reason === 'CrashLoopBackOff') {
      const last = container?.lastState?.terminated;
      const exit = last ? ` (last exit code ${last.exitCode}${last.reason ? `, ${last.reason}` : ''})` : '';
      return { state: 'failed', message: `the container keeps crashing${exit}${detail}` };
    }
    if (waiting.reason.includes('Image'))
      return { state: 'failed', message: `${waiting.reason}: image ${image} cannot be pulled${detail}` };
    return { state: 'failed', message: `${waiting.reason}${detail}` };
  }
  if (status?.phase === 'Failed')
    return { state: 'failed', message: `the pod failed: ${status.reason ?? ''} ${status.message ?? ''}`.trim() };

  const scheduled = status?.conditions?.find((condition) => condition.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const message = scheduled.message ?? '';
    // Waiting for its volume to bind is part of normal scheduling, not a failure.
    if (!/PersistentVolumeClaim/i.test(message)) return { state: 'failed', message: `the pod cannot be scheduled: ${message}` };
  }
  if (status?.phase === 'Running' && container?.state?.running) return { state: 'running', message: null };
  return { state: 'pending', message: waiting?.reason ?? null };
}
