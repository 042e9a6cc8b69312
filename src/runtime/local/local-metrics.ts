import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../../common/clock/clock.js';
import type { RuntimeMetrics } from '../runtime.provider.js';
import type { EnvironmentPaths } from './environment-paths.js';
import { exists } from './files.js';
import { CLOCK_TICKS_PER_SECOND, environmentProcesses, residentBytes } from './process-tree.js';
import { run } from './tmux.js';

/** First sample window of metrics() when no earlier sample exists for the environment. */
const CPU_SAMPLE_MS = 250;
const DISK_TIMEOUT_MS = 15_000;

interface CpuSample {
  at: number;
  ticks: Map<string, number>;
}

/**
 * Metrics of an environment on this host: its processes (found by their marker in /proc),
 * memory as the sum of their RSS, CPU as the delta of their `utime + stime` since the previous
 * call (a 250 ms window on the first call), disk as `du -sb` of the home; network is unknown.
 * Keeps the previous CPU sample of each environment.
 */
export class LocalMetrics {
  private readonly cpuSamples = new Map<string, CpuSample>();

  constructor(
    private readonly clock: Clock,
    private readonly hostPath: string,
  ) {}

  async sample(paths: EnvironmentPaths): Promise<RuntimeMetrics> {
    const { id } = paths;
    if (!(await exists(paths.root))) {
      return { cpuCores: null, memoryBytes: null, diskBytes: null, networkInBytes: null, networkOutBytes: null, at: this.clock.now() };
    }
    let sample = await this.sampleProcesses(id);
    let previous = this.cpuSamples.get(id);
    if (!previous) {
      previous = { at: sample.at, ticks: sample.ticks };
      await delay(CPU_SAMPLE_MS);
      sample = await this.sampleProcesses(id);
    }
    this.cpuSamples.set(id, { at: sample.at, ticks: sample.ticks });
    let ticks = 0;
    for (const [key, now] of sample.ticks) ticks += Math.max(0, now - (previous.ticks.get(key) ?? 0));
    const seconds = Math.max(0.001, (sample.at - previous.at) / 1000);
    const cpuCores = Math.round((ticks / CLOCK_TICKS_PER_SECOND / seconds) * 1000) / 1000;
    return {
      cpuCores,
      memoryBytes: sample.memoryBytes,
      diskBytes: await this.diskUsage(paths.home),
      networkInBytes: null,
      networkOutBytes: null,
      at: this.clock.now(),
    };
  }

  /** Forgets the CPU sample of a destroyed environment. */
  forget(id: string): void {
    this.cpuSamples.delete(id);
  }

  private async sampleProcesses(id: string): Promise<CpuSample & { memoryBytes: number }> {
    const { pids, table } = await environmentProcesses(id);
    const at = Date.now();
    const ticks = new Map<string, number>();
    let memoryBytes = 0;
    await Promise.all(
      [...pids].map(async (pid) => {
        const info = table.get(pid);
        if (info) ticks.set(`${pid}:${info.startTime}`, info.cpuTicks);
        memoryBytes += (await residentBytes(pid)) ?? 0;
      }),
    );
    return { at, ticks, memoryBytes };
  }

  /** Apparent size of the home directory (`du -sb`, argv); null when it cannot be measured. */
  private async diskUsage(home: string): Promise<number | null> {
    const result = await run('du', ['-s', '-b', '--', home], { PATH: this.hostPath, LANG: 'C' }, DISK_TIMEOUT_MS);
    const bytes = Number(result.stdout.trim().split(/\s+/)[0]);
    return result.stdout.trim() !== '' && Number.isFinite(bytes) ? bytes : null;
  }
}
