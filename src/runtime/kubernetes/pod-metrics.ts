import { Logger } from '@nestjs/common';
import type { EnvironmentSpec, RuntimeMetrics } from '../runtime.provider.js';
import { containerUsage, parseQuantity, type UsageSource } from './container-usage.js';
import { type KubernetesApi, reasonOf, statusOf } from './kubernetes-api.js';
import { CONTAINER_NAME, namesFor } from './manifests.js';
import type { EnvironmentObjects } from './objects.js';
import type { Located } from './placement.js';
import type { PodExec } from './pod-exec.js';
import { METRICS_SCRIPT, parseKeyValues } from './pod-scripts.js';

/** What the metrics API says of one pod (`metrics.k8s.io/v1beta1` PodMetrics), the parts read here. */
interface PodMetric {
  containers?: { name: string; usage?: { cpu?: string; memory?: string } }[];
}

/**
 * An environment's metrics. CPU and memory come from the cluster's metrics API (`metrics.k8s.io`,
 * served by metrics-server) when the cluster serves it and the runtime may read it (whether it is
 * served is asked once); otherwise from inside the container (`scripts/metrics.sh`, judged by
 * container-usage.ts: the container's own cgroup, v2 or v1, else its processes, else null, never
 * the node's figures). Disk (`du` of the home) and network (the pod's interfaces) always come from
 * inside. CPU in cores from the container needs two samples: the previous CPU time of each
 * environment is kept, with its source.
 */
export class PodMetrics {
  private readonly logger = new Logger('KubernetesRuntime');
  private readonly cpuSamples = new Map<string, { usec: number; at: number; source: UsageSource }>();
  /** Whether the cluster serves metrics.k8s.io (and the runtime may read it); asked once, null until known. */
  private metricsApi: Promise<boolean> | null = null;

  constructor(
    private readonly api: KubernetesApi,
    private readonly objects: EnvironmentObjects,
    private readonly exec: PodExec,
  ) {}

  async sample(spec: EnvironmentSpec): Promise<RuntimeMetrics> {
    const at = new Date();
    const empty: RuntimeMetrics = { cpuCores: null, memoryBytes: null, diskBytes: null, networkInBytes: null, networkOutBytes: null, at };
    const where = await this.objects.runningPod(spec);
    if (!where) return empty;
    const [inside, fromApi] = await Promise.all([this.exec.run(where, ['sh', '-c', METRICS_SCRIPT]), this.fromMetricsApi(where)]);
    const values = parseKeyValues(inside.text);
    const number = (key: string): number | null => {
      const value = Number(values.get(key));
      return values.has(key) && Number.isFinite(value) ? value : null;
    };
    const usage = containerUsage(values);
    let cpuCores: number | null = null;
    if (usage.cpuUsec !== null && usage.cpuSource !== null) {
      const previous = this.cpuSamples.get(spec.id);
      if (previous && previous.source === usage.cpuSource && at.getTime() > previous.at && usage.cpuUsec >= previous.usec) {
        cpuCores = (usage.cpuUsec - previous.usec) / 1000 / (at.getTime() - previous.at);
      }
      this.cpuSamples.set(spec.id, { usec: usage.cpuUsec, at: at.getTime(), source: usage.cpuSource });
    }
    return {
      cpuCores: fromApi?.cpuCores ?? cpuCores,
      memoryBytes: fromApi?.memoryBytes ?? usage.memoryBytes,
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

  /** The workspace container's CPU and memory from the metrics API; null when not served, not allowed, or not known yet. */
  private async fromMetricsApi(at: Located): Promise<{ cpuCores: number | null; memoryBytes: number | null } | null> {
    this.metricsApi ??= this.api.servesGroup('metrics.k8s.io').catch((error: unknown) => {
      this.logger.debug(`Could not tell whether the cluster serves metrics.k8s.io: ${reasonOf(error)}`);
      this.metricsApi = null;
      return false;
    });
    if (!(await this.metricsApi)) return null;
    const pod = namesFor(at.id).pod;
    try {
      const metric = (await this.api.find(`read PodMetrics ${pod}`, () =>
        this.api.custom.getNamespacedCustomObject({
          group: 'metrics.k8s.io',
          version: 'v1beta1',
          namespace: at.namespace,
          plural: 'pods',
          name: pod,
        }),
      )) as PodMetric | null;
      const usage = metric?.containers?.find((container) => container.name === CONTAINER_NAME)?.usage;
      if (!usage) return null;
      return { cpuCores: parseQuantity(usage.cpu), memoryBytes: parseQuantity(usage.memory) };
    } catch (error) {
      if (statusOf(error) === 403) {
        this.logger.warn(
          'The cluster serves metrics.k8s.io, but the runtime may not read it (RBAC: get on pods in metrics.k8s.io); metrics come from inside the containers',
        );
        this.metricsApi = Promise.resolve(false);
      }
      return null;
    }
  }
}
