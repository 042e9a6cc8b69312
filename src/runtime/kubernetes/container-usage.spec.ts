import { containerUsage, HOST_CGROUP_NAMESPACE, parseQuantity } from './container-usage.js';
import { parseKeyValues } from './pod-scripts.js';

/** What scripts/metrics.sh prints, as pod-metrics.ts parses it. */
const facts = (...lines: string[]): Map<string, string> => parseKeyValues(`${lines.join('\n')}\n`);
const PRIVATE_NAMESPACE = 'cgroupns=cgroup:[4026532710]';
const HOST_NAMESPACE = `cgroupns=${HOST_CGROUP_NAMESPACE}`;
const PROCESSES = ['page_size=4096', 'procs.count=3', 'procs.ticks=250', 'procs.rss_pages=1000'];

describe('containerUsage: which figures are the container’s own', () => {
  it('cgroup v2: memory.current and cpu.stat at the mount point (the container’s cgroup namespace)', () => {
    expect(containerUsage(facts(PRIVATE_NAMESPACE, 'v2.memory=52428800', 'v2.cpu_usec=1234567', ...PROCESSES))).toEqual({
      memoryBytes: 52_428_800,
      memorySource: 'cgroup-v2',
      cpuUsec: 1_234_567,
      cpuSource: 'cgroup-v2',
    });
  });

  it('cgroup v1 mounted from the container’s own cgroup (runc, without a cgroup namespace: the real test node)', () => {
    const usage = containerUsage(
      facts(
        HOST_NAMESPACE,
        'v1.memory_root=/devpocket-testbed-1/kubepods/burstable/pod1234/abcd',
        'v1.cpuacct_root=/devpocket-testbed-1/kubepods/burstable/pod1234/abcd',
        'v1.memory=73400320',
        'v1.cpu_nsec=2500000000',
        ...PROCESSES,
      ),
    );
    expect(usage).toEqual({ memoryBytes: 73_400_320, memorySource: 'cgroup-v1', cpuUsec: 2_500_000, cpuSource: 'cgroup-v1' });
  });

  it('cgroup v1 seen through a cgroup namespace of its own (mount root "/")', () => {
    const usage = containerUsage(
      facts(PRIVATE_NAMESPACE, 'v1.memory_root=/', 'v1.cpuacct_root=/', 'v1.memory=1000', 'v1.cpu_nsec=5000', ...PROCESSES),
    );
    expect(usage).toMatchObject({ memoryBytes: 1000, memorySource: 'cgroup-v1', cpuUsec: 5, cpuSource: 'cgroup-v1' });
  });

  it('the host’s root cgroup (host processes, as on the kwok node) is never used: the environment’s processes are', () => {
    const usage = containerUsage(
      facts(HOST_NAMESPACE, 'v1.memory_root=/', 'v1.cpuacct_root=/', 'v1.memory=24000000000', 'v1.cpu_nsec=9000000000000', ...PROCESSES),
    );
    expect(usage).toEqual({ memoryBytes: 1000 * 4096, memorySource: 'processes', cpuUsec: 2_500_000, cpuSource: 'processes' });
  });

  it('own memory hierarchy, shared CPU hierarchy: memory from the cgroup, CPU from the processes', () => {
    const usage = containerUsage(
      facts(HOST_NAMESPACE, 'v1.memory_root=/kubepods/x', 'v1.cpuacct_root=/', 'v1.memory=2048', 'v1.cpu_nsec=9000000000000', ...PROCESSES),
    );
    expect(usage).toEqual({ memoryBytes: 2048, memorySource: 'cgroup-v1', cpuUsec: 2_500_000, cpuSource: 'processes' });
  });

  it('neither a cgroup of its own nor any process of the environment: null, never the node’s figures', () => {
    expect(containerUsage(facts(HOST_NAMESPACE, 'v1.memory_root=/', 'v1.memory=24000000000', 'v1.cpu_nsec=9000000000000'))).toEqual({
      memoryBytes: null,
      memorySource: null,
      cpuUsec: null,
      cpuSource: null,
    });
    expect(containerUsage(facts(''))).toEqual({ memoryBytes: null, memorySource: null, cpuUsec: null, cpuSource: null });
    // Unreadable values are unknown, not zero.
    expect(containerUsage(facts(PRIVATE_NAMESPACE, 'v2.memory=', 'v2.cpu_usec=max')).memoryBytes).toBeNull();
  });

  it('reads the metrics API’s quantities', () => {
    expect(parseQuantity('250000000n')).toBeCloseTo(0.25);
    expect(parseQuantity('1500m')).toBeCloseTo(1.5);
    expect(parseQuantity('2')).toBe(2);
    expect(parseQuantity('65536Ki')).toBe(64 * 1024 * 1024);
    expect(parseQuantity('1Gi')).toBe(1024 ** 3);
    expect(parseQuantity('12M')).toBe(12_000_000);
    expect(parseQuantity('lots')).toBeNull();
    expect(parseQuantity(undefined)).toBeNull();
  });
});
