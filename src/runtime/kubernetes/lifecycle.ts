import { setTimeout as delay } from 'node:timers/promises';
import type { EnvironmentSpec } from '../runtime.provider.js';
import { KubernetesApiError } from './kubernetes-api.js';
import type { KubernetesStatus } from './environment-status.js';
import { ANNOTATION_INSTALLATION, namesFor } from './manifests.js';
import type { EnvironmentObjects } from './objects.js';
import type { Located, NamespacePlacement } from './placement.js';
import type { LogCapture, StoppedLogs } from './stopped-log.js';

export interface KubernetesLifecycleTimeouts {
  /** How long stop() waits for the pod to be gone. */
  stopTimeoutMs: number;
  /** How long destroy() waits for every object to be gone. */
  destroyTimeoutMs: number;
}

/**
 * provision, start, stop and destroy on the cluster: the namespace (per-user mode), the objects,
 * scaling the StatefulSet, and waiting until the pod (and, on destroy, every object) is gone, so
 * every process has ended when they return. A start brings every object to the spec first, so what
 * changed since the last start (variables, resources, storage, the template's image, ports or
 * version) reaches the new pod, and never leaves a pod of older settings running.
 */
export class KubernetesLifecycle {
  constructor(
    private readonly placement: NamespacePlacement,
    private readonly objects: EnvironmentObjects,
    private readonly status: KubernetesStatus,
    private readonly timeouts: KubernetesLifecycleTimeouts,
    private readonly stoppedLogs: StoppedLogs,
  ) {}

  /**
   * Creates whatever is missing and brings what exists up to date (idempotent, heals a half-created
   * environment; objects.ts), then one replica of the spec's pod. When a pod of an older pod
   * template was there, the StatefulSet was put at 0 replicas with the new one: the old pod is
   * waited for until gone, then the new one is started. An unchanged spec replaces no pod.
   */
  async provision(spec: EnvironmentSpec): Promise<void> {
    const namespace = await this.placement.placeNew(spec);
    await this.placement.ensureNamespace(spec, namespace);
    const at = { id: spec.id, namespace };
    if ((await this.objects.apply(spec, at)) === 'roll') {
      await this.podGone(at);
      await this.objects.scale(at, 1);
    }
  }

  /** The same as provision: whatever is missing is created again, what changed is applied, then one replica. */
  async start(spec: EnvironmentSpec): Promise<void> {
    await this.provision(spec);
  }

  /**
   * Labels what exists of an environment made before installations were told apart as this
   * installation's (per-user mode: and binds the runtime's role in its namespace, which such a
   * namespace lacks).
   */
  async adopt(spec: EnvironmentSpec): Promise<void> {
    const at = await this.placement.locate(spec);
    if (!at) return;
    await this.placement.ensureNamespace(spec, at.namespace);
    await this.objects.adopt(at);
  }

  /**
   * Saves the startup script's progress on the StatefulSet and scales it to 0 in one patch; waits
   * until the pod is gone; keeps the log's tail for the stopped environment (stopped-log.ts).
   */
  async stop(spec: EnvironmentSpec): Promise<void> {
    const at = await this.placement.locate(spec);
    if (!at) return;
    const { workload, view } = await this.objects.inspect(at);
    if (!workload) return;
    const podGone = (): Promise<void> => this.podGone(at);
    if ((workload.spec?.replicas ?? 0) === 0) return podGone();
    // The pod (and its view of the startup script) goes away: keep the progress on the StatefulSet.
    const progress = await this.status.readProgress(at).catch(() => null);
    const annotations: Record<string, string> = progress ? { [ANNOTATION_INSTALLATION]: JSON.stringify(progress) } : {};
    // And the log on the home volume becomes unreadable: capture it until the pod's end.
    const capture: LogCapture | null = view.state === 'running' ? await this.stoppedLogs.capture(at) : null;
    try {
      await this.objects.scale(at, 0, annotations);
      await podGone();
    } catch (error) {
      await capture?.finish();
      throw error;
    }
    await this.stoppedLogs.keep(spec, at, capture);
  }

  /** Deletes every object, then waits until the StatefulSet, the pod and the PVC are gone. */
  async destroy(spec: EnvironmentSpec): Promise<void> {
    const at = await this.placement.locate(spec);
    if (!at) return;
    await this.objects.remove(at);
    // The pod goes first (foreground deletion), then the claim's protection lets the volume go.
    await this.waitUntil(`environment ${spec.id} to be removed`, this.timeouts.destroyTimeoutMs, async () => {
      const [workload, pod, claim] = await Promise.all([
        this.objects.readWorkload(at),
        this.objects.readPod(at),
        this.objects.readClaim(at),
      ]);
      return workload === null && pod === null && claim === null;
    });
    this.placement.forget(spec.id);
  }

  /** Waits until the environment's pod is gone (its processes have ended). */
  private podGone(at: Located): Promise<void> {
    const { pod } = namesFor(at.id);
    return this.waitUntil(`the pod ${pod} to end`, this.timeouts.stopTimeoutMs, async () => (await this.objects.readPod(at)) === null);
  }

  private async waitUntil(what: string, timeoutMs: number, done: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let pause = 100;
    while (!(await done())) {
      if (Date.now() > deadline)
        throw new KubernetesApiError(`Kubernetes runtime: timed out after ${timeoutMs / 1000} s waiting for ${what}`, null);
      await delay(pause);
      pause = Math.min(1000, pause * 2);
    }
  }
}
