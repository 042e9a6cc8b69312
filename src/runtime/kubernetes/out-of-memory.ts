import type { V1Pod } from '@kubernetes/client-node';
import { HOST_CGROUP_NAMESPACE } from './container-usage.js';
import { CONTAINER_NAME } from './manifests.js';

/**
 * What an environment's status says when its memory limit was hit (docs/kubernetes.md, "Out of
 * memory"). The kernel's OOM killer acts inside the container's memory cgroup, in one of two ways:
 *
 * - **A process is killed, the container lives on** (cgroup v1, as on the test cluster's real node;
 *   cgroup v2 with the kubelet's `singleProcessOOMKill`): nothing changes in the pod's status, so
 *   `scripts/status.sh` reads the container's own OOM kill counter (`oom_kill` of `memory.events`,
 *   v2, or of `memory.oom_control`, v1), and this module decides whether that cgroup is the
 *   container's own, with the rule of container-usage.ts (a mount of the root in the host's cgroup
 *   namespace is the node's: never read).
 * - **The whole container is killed** (cgroup v2: the kubelet sets `memory.oom.group`; or the
 *   entrypoint itself was the victim): the kubelet restarts it and the pod's container status
 *   keeps `lastState.terminated.reason: OOMKilled`, which the pod watch sees.
 *
 * Either way the note names the container's memory limit, from the pod.
 */

/** The workspace container's memory limit as the pod states it (`256Mi`), or null. */
export function memoryLimitOf(pod: V1Pod | null): string | null {
  const container = pod?.spec?.containers.find((each) => each.name === CONTAINER_NAME) ?? pod?.spec?.containers[0];
  const limit: unknown = container?.resources?.limits?.memory;
  return typeof limit === 'string' || typeof limit === 'number' ? String(limit) : null;
}

/** True when the workspace container's previous run ended because it ran out of memory (it was restarted since). */
export function restartedOutOfMemory(pod: V1Pod | null): boolean {
  const statuses = pod?.status?.containerStatuses;
  const container = statuses?.find((each) => each.name === CONTAINER_NAME) ?? statuses?.[0];
  return container?.lastState?.terminated?.reason === 'OOMKilled';
}

/**
 * Processes the kernel killed for memory in the running container, from what `scripts/status.sh`
 * saw (`cgroupns`, `v2.oom_kill`, `v1.memory_root`, `v1.oom_kill`); null when the container's own
 * counter cannot be read (no cgroup of its own in view, as on kwok's node, whose pods are host processes).
 */
export function oomKillsInside(values: ReadonlyMap<string, string>): number | null {
  const count = (key: string): number | null => {
    const raw = values.get(key)?.trim();
    if (raw === undefined || !/^\d+$/.test(raw)) return null;
    return Number(raw);
  };
  // memory.events exists only below the root of a v2 hierarchy: at the mount point, it is the container's.
  const v2 = count('v2.oom_kill');
  if (v2 !== null) return v2;
  const root = values.get('v1.memory_root');
  const ownNamespace = (values.get('cgroupns') ?? HOST_CGROUP_NAMESPACE) !== HOST_CGROUP_NAMESPACE;
  if (root === undefined || (root === '/' && !ownNamespace)) return null;
  return count('v1.oom_kill');
}

/** The status note, or null when nothing was killed: `a process was killed: out of memory (limit 256Mi)`. */
export function outOfMemoryNote(pod: V1Pod | null, processesKilled: number | null): string | null {
  const limit = memoryLimitOf(pod);
  const suffix = `out of memory${limit === null ? '' : ` (limit ${limit})`}`;
  const notes: string[] = [];
  if (restartedOutOfMemory(pod)) notes.push(`the container was killed and restarted: ${suffix}`);
  if (processesKilled !== null && processesKilled > 0) {
    notes.push(processesKilled === 1 ? `a process was killed: ${suffix}` : `${processesKilled} processes were killed: ${suffix}`);
  }
  return notes.length > 0 ? notes.join('; ') : null;
}
