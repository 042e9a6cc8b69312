import type { V1ConfigMap, V1PersistentVolumeClaim, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';
import { ENVIRONMENT_ID_PATTERN, type EnvironmentSpec } from '../runtime.provider.js';
import type { KubernetesApi } from './kubernetes-api.js';
import { configMapFor, LABEL_ENVIRONMENT_ID, MANAGED_SELECTOR, namesFor, serviceFor, statefulSetFor, volumeClaimFor } from './manifests.js';
import type { Located, NamespacePlacement } from './placement.js';
import { viewPod, type PodView } from './pod-status.js';
import { stoppedLogName } from './stopped-log.js';

/** What the API objects of a located environment say (one read of the StatefulSet and of the pod). */
export interface Inspection {
  workload: V1StatefulSet | null;
  pod: V1Pod | null;
  view: PodView;
}

/**
 * The API objects of each environment (ConfigMap, PersistentVolumeClaim, Service, StatefulSet,
 * and the StatefulSet's pod), through KubernetesApi: applying the manifests of manifests.ts,
 * scaling, deleting, reading, and listing what this runtime manages.
 */
export class EnvironmentObjects {
  constructor(
    private readonly config: KubernetesConfig,
    private readonly api: KubernetesApi,
    private readonly placement: NamespacePlacement,
  ) {}

  // ---- apply, scale, delete ------------------------------------------------------------------

  /**
   * Creates whatever is missing (409 is fine, so a half-created environment heals) and brings an
   * outdated ConfigMap up to date. Returns whether the StatefulSet was created or existed already.
   */
  async apply(spec: EnvironmentSpec, namespace: string): Promise<'created' | 'existed'> {
    const names = namesFor(spec.id);
    await this.api.ensure(`create ConfigMap ${names.workload}`, () =>
      this.api.core.createNamespacedConfigMap({ namespace, body: configMapFor(spec, this.config, namespace) }),
    );
    await this.syncConfigMap(spec, namespace);
    await this.api.ensure(`create PersistentVolumeClaim ${names.volume}`, () =>
      this.api.core.createNamespacedPersistentVolumeClaim({ namespace, body: volumeClaimFor(spec, this.config, namespace) }),
    );
    const service = serviceFor(spec, this.config, namespace);
    if (service) {
      await this.api.ensure(`create Service ${names.workload}`, () => this.api.core.createNamespacedService({ namespace, body: service }));
    }
    return this.api.ensure(`create StatefulSet ${names.workload}`, () =>
      this.api.apps.createNamespacedStatefulSet({ namespace, body: statefulSetFor(spec, this.config, 1, namespace) }),
    );
  }

  /** A ConfigMap from an older template version (or server version) is brought up to date; the pod reads it at its next start. */
  private async syncConfigMap(spec: EnvironmentSpec, namespace: string): Promise<void> {
    const names = namesFor(spec.id);
    const wanted = configMapFor(spec, this.config, namespace);
    const current = await this.readConfigMap({ id: spec.id, namespace });
    if (!current) return;
    const data: Record<string, string | null> = { ...wanted.data };
    for (const key of Object.keys(current.data ?? {})) if (!(key in data)) data[key] = null;
    const same = Object.entries(data).every(([key, value]) => (current.data ?? {})[key] === (value ?? undefined));
    if (same) return;
    await this.api.call(`update ConfigMap ${names.workload}`, () =>
      this.api.core.patchNamespacedConfigMap({
        name: names.workload,
        namespace,
        body: { metadata: { annotations: wanted.metadata?.annotations }, data },
      }),
    );
  }

  /** Scales the StatefulSet, setting `annotations` in the same merge patch. */
  async scale(at: Located, replicas: 0 | 1, annotations?: Record<string, string>): Promise<void> {
    const names = namesFor(at.id);
    const body = annotations ? { metadata: { annotations }, spec: { replicas } } : { spec: { replicas } };
    await this.api.call(`scale StatefulSet ${names.workload} to ${replicas}`, () =>
      this.api.apps.patchNamespacedStatefulSet({ name: names.workload, namespace: at.namespace, body }),
    );
  }

  /** Deletes StatefulSet (foreground: the pod first), Service, ConfigMaps (its own, the stopped log's) and PVC; absent ones are fine. */
  async remove(at: Located): Promise<void> {
    const names = namesFor(at.id);
    const { namespace } = at;
    await this.api.remove(`delete StatefulSet ${names.workload}`, () =>
      this.api.apps.deleteNamespacedStatefulSet({
        name: names.workload,
        namespace,
        propagationPolicy: 'Foreground',
        gracePeriodSeconds: 5,
      }),
    );
    await this.api.remove(`delete Service ${names.workload}`, () =>
      this.api.core.deleteNamespacedService({ name: names.workload, namespace }),
    );
    await this.api.remove(`delete ConfigMap ${names.workload}`, () =>
      this.api.core.deleteNamespacedConfigMap({ name: names.workload, namespace }),
    );
    await this.api.remove(`delete ConfigMap ${stoppedLogName(at.id)}`, () =>
      this.api.core.deleteNamespacedConfigMap({ name: stoppedLogName(at.id), namespace }),
    );
    await this.api.remove(`delete PersistentVolumeClaim ${names.volume}`, () =>
      this.api.core.deleteNamespacedPersistentVolumeClaim({ name: names.volume, namespace }),
    );
  }

  // ---- read ------------------------------------------------------------------------------------

  readWorkload(at: Located): Promise<V1StatefulSet | null> {
    const { workload } = namesFor(at.id);
    return this.api.find(`read StatefulSet ${workload}`, () =>
      this.api.apps.readNamespacedStatefulSet({ name: workload, namespace: at.namespace }),
    );
  }

  readPod(at: Located): Promise<V1Pod | null> {
    const { pod } = namesFor(at.id);
    return this.api.find(`read Pod ${pod}`, () => this.api.core.readNamespacedPod({ name: pod, namespace: at.namespace }));
  }

  readClaim(at: Located): Promise<V1PersistentVolumeClaim | null> {
    const { volume } = namesFor(at.id);
    return this.api.find(`read PersistentVolumeClaim ${volume}`, () =>
      this.api.core.readNamespacedPersistentVolumeClaim({ name: volume, namespace: at.namespace }),
    );
  }

  readConfigMap(at: Located): Promise<V1ConfigMap | null> {
    const { workload } = namesFor(at.id);
    return this.api.find(`read ConfigMap ${workload}`, () =>
      this.api.core.readNamespacedConfigMap({ name: workload, namespace: at.namespace }),
    );
  }

  /** The StatefulSet, the pod, and what the pod says (viewPod). */
  async inspect(at: Located): Promise<Inspection> {
    const [workload, pod] = await Promise.all([this.readWorkload(at), this.readPod(at)]);
    return { workload, pod, view: viewPod(pod, workload?.spec?.replicas ?? 0) };
  }

  /** Where the environment is and what its pod says; `at` null when it exists nowhere. */
  async locateAndInspect(spec: EnvironmentSpec): Promise<{ at: Located | null; view: PodView }> {
    const at = await this.placement.locate(spec);
    if (!at) return { at: null, view: { state: 'absent', message: null } };
    return { at, view: (await this.inspect(at)).view };
  }

  /** The environment, when its container runs; null otherwise. */
  async runningPod(spec: EnvironmentSpec): Promise<Located | null> {
    const { at, view } = await this.locateAndInspect(spec);
    return view.state === 'running' ? at : null;
  }

  /** The ids of every environment with a StatefulSet, PVC or ConfigMap this runtime manages (remembering where each is). */
  async listIds(): Promise<string[]> {
    const labelSelector = MANAGED_SELECTOR;
    const shared = this.placement.shared;
    const namespace = this.config.namespace;
    const [workloads, claims, configs] = await Promise.all([
      this.api.call('list StatefulSets', () =>
        shared
          ? this.api.apps.listNamespacedStatefulSet({ namespace, labelSelector })
          : this.api.apps.listStatefulSetForAllNamespaces({ labelSelector }),
      ),
      this.api.call('list PersistentVolumeClaims', () =>
        shared
          ? this.api.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector })
          : this.api.core.listPersistentVolumeClaimForAllNamespaces({ labelSelector }),
      ),
      this.api.call('list ConfigMaps', () =>
        shared
          ? this.api.core.listNamespacedConfigMap({ namespace, labelSelector })
          : this.api.core.listConfigMapForAllNamespaces({ labelSelector }),
      ),
    ]);
    const ids = new Set<string>();
    for (const item of [...workloads.items, ...claims.items, ...configs.items]) {
      const id = item.metadata?.labels?.[LABEL_ENVIRONMENT_ID];
      if (!id || !ENVIRONMENT_ID_PATTERN.test(id)) continue;
      ids.add(id);
      if (item.metadata?.namespace) this.placement.remember(id, item.metadata.namespace);
    }
    return [...ids].sort();
  }
}
