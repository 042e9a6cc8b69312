import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1PersistentVolumeClaim, V1Pod, V1ServicePort, V1StatefulSet } from '@kubernetes/client-node';
import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';
import { ENVIRONMENT_ID_PATTERN, type EnvironmentSpec, type StorageRefusal } from '../runtime.provider.js';
import { KubernetesApiError, statusOf, type KubernetesApi } from './kubernetes-api.js';
import { HomeVolume } from './home-volume.js';
import { configMapFor, LABEL_ENVIRONMENT_ID, namesFor, serviceFor, statefulSetFor } from './manifests.js';
import { UNMARKED_SELECTOR, type Ownership } from './ownership.js';
import type { Located, NamespacePlacement } from './placement.js';
import { viewPod, type PodView } from './pod-status.js';
import { stoppedLogName } from './stopped-log.js';

/** What the API objects of a located environment say (one read of the StatefulSet and of the pod). */
export interface Inspection {
  workload: V1StatefulSet | null;
  pod: V1Pod | null;
  view: PodView;
}

/** On the StatefulSet: the hash of the pod template it was last given (so an unchanged one is never written, and never rolls the pod). */
export const ANNOTATION_POD_TEMPLATE = 'devpocket.io/pod-template-hash';

/** The hash of a StatefulSet's pod template, as the runtime builds it (manifests.ts). */
export function podTemplateHash(workload: V1StatefulSet): string {
  return createHash('sha256')
    .update(JSON.stringify(workload.spec?.template ?? null))
    .digest('hex')
    .slice(0, 16);
}

/** A Service's ports, comparable: name, port, target port and protocol of each, in order. */
function portsKey(ports: V1ServicePort[] | undefined): string {
  return JSON.stringify(
    (ports ?? []).map((port) => [port.name ?? '', port.port, String(port.targetPort ?? port.port), port.protocol ?? 'TCP']),
  );
}

/** What applying the objects left to do: nothing ('ready': one replica of the spec's pod template), or replace the pod ('roll'). */
export type Applied = 'ready' | 'roll';

/**
 * The API objects of each environment (ConfigMap, PersistentVolumeClaim, Service, StatefulSet,
 * and the StatefulSet's pod), through KubernetesApi: applying the manifests of manifests.ts
 * (creating what is missing, bringing what exists up to date), scaling, deleting, reading, and
 * listing what this installation manages. Every object it creates carries the installation's
 * label (ownership.ts).
 */
export class EnvironmentObjects {
  private readonly home: HomeVolume;

  constructor(
    private readonly config: KubernetesConfig,
    private readonly api: KubernetesApi,
    private readonly placement: NamespacePlacement,
    private readonly ownership: Ownership,
  ) {
    this.home = new HomeVolume(config, api, ownership);
  }

  // ---- apply, scale, delete ------------------------------------------------------------------

  /**
   * Brings every object to what the spec asks, creating whatever is missing (409 is fine, so a
   * half-created environment heals): the home volume first (created, or grown; a size it cannot
   * take throws before anything else changes), then the ConfigMap, the Service and the StatefulSet.
   * Returns 'ready' when the StatefulSet is at one replica with the spec's pod template, or 'roll'
   * when a pod of an older template was still there or on its way: the StatefulSet is then at 0
   * replicas with the new template, and the caller waits until the old pod is gone and scales to 1.
   */
  async apply(spec: EnvironmentSpec, at: Located): Promise<Applied> {
    await this.home.apply(spec, at);
    await this.applyConfigMap(spec, at.namespace);
    await this.applyService(spec, at.namespace);
    return this.applyWorkload(spec, at);
  }

  /** Why the home volume cannot take `storage` at the next start, when that can be told now (home-volume.ts). */
  async checkStorage(spec: EnvironmentSpec, storage: string): Promise<StorageRefusal | null> {
    const at = await this.placement.locate(spec).catch(() => null);
    return at ? this.home.check(at, storage) : null;
  }

  /** Created, or brought up to date: data from an older template (or server) version, the labels. The pod reads it at its next start. */
  private async applyConfigMap(spec: EnvironmentSpec, namespace: string): Promise<void> {
    const names = namesFor(spec.id);
    const wanted = this.ownership.label(configMapFor(spec, this.config, namespace));
    const created = await this.api.ensure(`create ConfigMap ${names.workload}`, () =>
      this.api.core.createNamespacedConfigMap({ namespace, body: wanted }),
    );
    if (created === 'created') return;
    const current = await this.readConfigMap({ id: spec.id, namespace });
    if (!current) return;
    const data: Record<string, string | null> = { ...wanted.data };
    for (const key of Object.keys(current.data ?? {})) if (!(key in data)) data[key] = null;
    const same = Object.entries(data).every(([key, value]) => (current.data ?? {})[key] === (value ?? undefined));
    if (same && this.ownership.owns(current.metadata)) return;
    await this.api.call(`update ConfigMap ${names.workload}`, () =>
      this.api.core.patchNamespacedConfigMap({
        name: names.workload,
        namespace,
        body: { metadata: { labels: wanted.metadata?.labels, annotations: wanted.metadata?.annotations }, data },
      }),
    );
  }

  /** The template's ports: a Service created, its ports and labels brought up to date, or deleted when the template has none. */
  private async applyService(spec: EnvironmentSpec, namespace: string): Promise<void> {
    const name = namesFor(spec.id).workload;
    const manifest = serviceFor(spec, this.config, namespace);
    const current = await this.api.find(`read Service ${name}`, () => this.api.core.readNamespacedService({ name, namespace }));
    if (!manifest) {
      if (current) await this.api.remove(`delete Service ${name}`, () => this.api.core.deleteNamespacedService({ name, namespace }));
      return;
    }
    const wanted = this.ownership.label(manifest);
    if (!current) {
      await this.api.ensure(`create Service ${name}`, () => this.api.core.createNamespacedService({ namespace, body: wanted }));
      return;
    }
    if (this.ownership.owns(current.metadata) && portsKey(current.spec?.ports) === portsKey(wanted.spec?.ports)) return;
    await this.api.call(`update Service ${name}`, () =>
      this.api.core.patchNamespacedService({
        name,
        namespace,
        body: { metadata: { labels: wanted.metadata?.labels }, spec: { ports: wanted.spec?.ports } },
      }),
    );
  }

  /** The StatefulSet as this installation builds it for the spec: labelled, one replica, its pod template's hash annotated. */
  private workloadFor(spec: EnvironmentSpec, namespace: string): V1StatefulSet {
    const workload = this.ownership.labelWorkload(statefulSetFor(spec, this.config, 1, namespace));
    return {
      ...workload,
      metadata: {
        ...workload.metadata,
        annotations: { ...workload.metadata?.annotations, [ANNOTATION_POD_TEMPLATE]: podTemplateHash(workload) },
      },
    };
  }

  /**
   * Creates the StatefulSet at one replica, or brings an existing one to the spec: an unchanged pod
   * template (same hash) is left alone, only scaled to one replica; a changed one replaces the
   * StatefulSet's template (optimistic concurrency: a conflict reads it again), at 0 replicas when a
   * pod is there or on its way (`roll`), else at 1.
   */
  private async applyWorkload(spec: EnvironmentSpec, at: Located): Promise<Applied> {
    const name = namesFor(spec.id).workload;
    const wanted = this.workloadFor(spec, at.namespace);
    const hash = wanted.metadata?.annotations?.[ANNOTATION_POD_TEMPLATE];
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const current = await this.readWorkload(at);
      if (!current) {
        const created = await this.api.ensure(`create StatefulSet ${name}`, () =>
          this.api.apps.createNamespacedStatefulSet({ namespace: at.namespace, body: wanted }),
        );
        if (created === 'created') return 'ready';
        continue;
      }
      if (current.metadata?.annotations?.[ANNOTATION_POD_TEMPLATE] === hash) {
        if ((current.spec?.replicas ?? 0) !== 1) await this.scale(at, 1);
        return 'ready';
      }
      const roll = (current.spec?.replicas ?? 0) > 0 || (await this.readPod(at)) !== null;
      const { status: _status, ...rest } = current;
      const body: V1StatefulSet = {
        ...rest,
        metadata: {
          ...current.metadata,
          labels: { ...current.metadata?.labels, ...wanted.metadata?.labels },
          annotations: { ...current.metadata?.annotations, ...wanted.metadata?.annotations },
        },
        spec: { ...current.spec!, template: wanted.spec!.template, replicas: roll ? 0 : 1 },
      };
      try {
        await this.api.call(`update StatefulSet ${name}`, () =>
          this.api.apps.replaceNamespacedStatefulSet({ name, namespace: at.namespace, body }),
        );
        return roll ? 'roll' : 'ready';
      } catch (error) {
        if (statusOf(error) !== 409) throw error;
      }
    }
    throw new KubernetesApiError(`Kubernetes runtime: the StatefulSet ${name} kept changing while it was being updated`, 409);
  }

  /**
   * Labels what exists of an environment as this installation's (objects made before installations
   * were told apart): the StatefulSet (its pod template gets the label at the next start), the
   * ConfigMaps, the claim, the Service and the pod. Absent objects are skipped.
   */
  async adopt(at: Located): Promise<void> {
    const names = namesFor(at.id);
    const { namespace } = at;
    const body = { metadata: { labels: this.ownership.labels } };
    await this.api.find(`label StatefulSet ${names.workload}`, () =>
      this.api.apps.patchNamespacedStatefulSet({ name: names.workload, namespace, body }),
    );
    for (const name of [names.workload, stoppedLogName(at.id)]) {
      await this.api.find(`label ConfigMap ${name}`, () => this.api.core.patchNamespacedConfigMap({ name, namespace, body }));
    }
    await this.api.find(`label PersistentVolumeClaim ${names.volume}`, () =>
      this.api.core.patchNamespacedPersistentVolumeClaim({ name: names.volume, namespace, body }),
    );
    await this.api.find(`label Service ${names.workload}`, () =>
      this.api.core.patchNamespacedService({ name: names.workload, namespace, body }),
    );
    await this.api.find(`label Pod ${names.pod}`, () => this.api.core.patchNamespacedPod({ name: names.pod, namespace, body }));
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
    return this.home.read(at);
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

  /** The ids of every environment with a StatefulSet, PVC or ConfigMap of this installation (remembering where each is). */
  listIds(): Promise<string[]> {
    return this.listBy(this.ownership.selector);
  }

  /** The ids of every environment with a StatefulSet, PVC or ConfigMap of DevPocket's without an installation label. */
  listUnclaimed(): Promise<string[]> {
    return this.listBy(UNMARKED_SELECTOR);
  }

  private async listBy(labelSelector: string): Promise<string[]> {
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
