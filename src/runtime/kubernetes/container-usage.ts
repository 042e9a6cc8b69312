/**
 * Which memory and CPU figures are an environment's own, from what `scripts/metrics.sh` saw inside
 * its container (`key=value` lines). In order:
 *
 * 1. **cgroup v2** (`v2.memory`, `v2.cpu_usec`): `memory.current` exists only below the root of the
 *    hierarchy, so finding it at the mount point means the container's own cgroup (its cgroup
 *    namespace).
 * 2. **cgroup v1** (`v1.memory`, `v1.cpu_nsec`), when the hierarchy mounted in the container is the
 *    container's own: mounted from below the root (runc bind-mounts the container's cgroup, mount
 *    root `/kubepods/…`), or seen through a cgroup namespace of its own. A mount of the root in the
 *    host's cgroup namespace is the node's: never used.
 * 3. **The environment's processes** (`procs.*`: those whose environment carries
 *    `DEVPOCKET_ENVIRONMENT_ID`): memory is the sum of their resident sets, CPU the sum of their
 *    user and system time (USER_HZ = 100). Processes that already ended are not counted.
 * 4. Otherwise null: never the node's figures (`/proc/meminfo`, `/proc/stat`, a root cgroup).
 *
 * Memory and CPU are chosen separately (a container may have its own memory hierarchy and share
 * the CPU one); `cpuSource` tells the caller which counter two samples must come from.
 */

/** The inode of the initial (host's) cgroup namespace, PROC_CGROUP_INIT_INO. */
export const HOST_CGROUP_NAMESPACE = 'cgroup:[4026531835]';

export type UsageSource = 'cgroup-v2' | 'cgroup-v1' | 'processes';

export interface ContainerUsage {
  memoryBytes: number | null;
  memorySource: UsageSource | null;
  /** Cumulative CPU time in microseconds (a rate needs two samples from the same source). */
  cpuUsec: number | null;
  cpuSource: UsageSource | null;
}

/** USER_HZ: clock ticks per second of /proc/<pid>/stat (100 on every mainstream Linux architecture). */
const TICKS_PER_SECOND = 100;

function numberAt(values: ReadonlyMap<string, string>, key: string): number | null {
  const raw = values.get(key);
  if (raw === undefined || raw.trim() === '') return null;
  const value = Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : null;
}

export function containerUsage(values: ReadonlyMap<string, string>): ContainerUsage {
  const ownNamespace = (values.get('cgroupns') ?? HOST_CGROUP_NAMESPACE) !== HOST_CGROUP_NAMESPACE;
  const ownV1 = (controller: 'memory' | 'cpuacct'): boolean => {
    const root = values.get(`v1.${controller}_root`);
    return root !== undefined && (root !== '/' || ownNamespace);
  };
  const processes = (numberAt(values, 'procs.count') ?? 0) > 0;

  let memoryBytes: number | null = null;
  let memorySource: UsageSource | null = null;
  const v2Memory = numberAt(values, 'v2.memory');
  const v1Memory = numberAt(values, 'v1.memory');
  const rssPages = numberAt(values, 'procs.rss_pages');
  if (v2Memory !== null) [memoryBytes, memorySource] = [v2Memory, 'cgroup-v2'];
  else if (v1Memory !== null && ownV1('memory')) [memoryBytes, memorySource] = [v1Memory, 'cgroup-v1'];
  else if (processes && rssPages !== null) [memoryBytes, memorySource] = [rssPages * (numberAt(values, 'page_size') ?? 4096), 'processes'];

  let cpuUsec: number | null = null;
  let cpuSource: UsageSource | null = null;
  const v2Cpu = numberAt(values, 'v2.cpu_usec');
  const v1Cpu = numberAt(values, 'v1.cpu_nsec');
  const ticks = numberAt(values, 'procs.ticks');
  if (v2Memory !== null && v2Cpu !== null) [cpuUsec, cpuSource] = [v2Cpu, 'cgroup-v2'];
  else if (v1Cpu !== null && ownV1('cpuacct')) [cpuUsec, cpuSource] = [Math.floor(v1Cpu / 1000), 'cgroup-v1'];
  else if (processes && ticks !== null) [cpuUsec, cpuSource] = [ticks * (1_000_000 / TICKS_PER_SECOND), 'processes'];

  return { memoryBytes, memorySource, cpuUsec, cpuSource };
}

/**
 * A Kubernetes quantity as the metrics API writes it (`12345n` cores, `256Mi` bytes, `1.5`), as a
 * number; null when it cannot be read.
 */
export function parseQuantity(text: string | undefined): number | null {
  if (text === undefined) return null;
  const match = /^([0-9.]+(?:e[+-]?\d+)?)([a-zA-Z]*)$/.exec(text.trim());
  if (!match?.[1]) return null;
  const value = Number(match[1]);
  if (!Number.isFinite(value)) return null;
  const suffixes: Record<string, number> = {
    '': 1,
    n: 1e-9,
    u: 1e-6,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
  };
  const factor = suffixes[match[2] ?? ''];
  return factor === undefined ? null : value * factor;
}
