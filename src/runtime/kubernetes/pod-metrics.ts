import type { EnvironmentSpec, RuntimeMetrics } from '../runtime.provider.js';
import type { EnvironmentObjects } from './objects.js';
import type { PodExec } from './pod-exec.js';
import { METRICS_SCRIPT, parseKeyValues } from './pod-scripts.js';

/**
 * Metrics from inside the container (`scripts/metrics.sh`: cgroup memory and CPU time, `du` of
 * the home, network counters), so the metrics API is not needed. CPU in cores comes from two
 * samples: it keeps the previous CPU time of each environment.
 */
export class PodMetrics {
  private readonly cpuSamples = new Map<string, { usec: number; at: number }>();

  constructor(
    private readonly objects: EnvironmentObjects,
    private readonly exec: PodExec,
  ) {}

  async sample(spec: EnvironmentSpec): Promise<RuntimeMetrics> {
    const at = new Date();
    const empty: RuntimeMetrics = { cpuCores: null, memoryBytes: null, diskBytes: null, networkInBytes: null, networkOutBytes: null, at };
    const where = await this.objects.runningPod(spec);
    if (!where) return empty;
    const values = parseKeyValues((await this.exec.run(where, ['sh', '-c', METRICS_SCRIPT])).text);
    const number = (key: string): number | null => {
      const value = Number(values.get(key));
      return values.has(key) && Number.isFinite(value) ? value : null;
    };
    const usec = number('cpu_usec');
    let cpuCores: number | null = null;
    if (usec !== null) {
      const previous = this.cpuSamples.get(spec.id);
      if (previous && at.getTime() > previous.at && usec >= previous.usec) {
        cpuCores = (usec - previous.usec) / 1000 / (at.getTime() - previous.at);
      }
      this.cpuSamples.set(spec.id, { usec, at: at.getTime() });
    }
    return {
      cpuCores,
      memoryBytes: number('memory'),
      diskBytes: number('disk'),
      networkInBytes: number('net_in'),
      networkOutBytes: number('net_out'),
      at,
    };
  }

  /** Forgets the CPU sample of a destroyed environment. */
  forget(id: string): void {
    this.cpuSamples.delete(id);
  }
}
