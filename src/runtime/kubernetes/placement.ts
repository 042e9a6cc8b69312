import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';
import { ENVIRONMENT_ID_PATTERN, type EnvironmentSpec } from '../runtime.provider.js';
import type { KubernetesApi } from './kubernetes-api.js';
import { LABEL_ENVIRONMENT_ID, namespaceFor, userNamespace } from './manifests.js';

/** An environment and the namespace its objects are in. */
export interface Located {
  id: string;
  namespace: string;
}

/**
 * Which namespace an environment's objects are in: the configured one, or
 * (KUBERNETES_NAMESPACE_MODE=per-user) its owner's `<prefix>-<user id>`, created on first use.
 * In per-user mode it remembers where each environment was seen (by the watch, the listing or a
 * lookup), and finds an environment known only by its id (an orphan the reconciler found) by its
 * label across namespaces.
 */
export class NamespacePlacement {
  /** Per-user mode: the namespace each environment was found in, and the namespaces known to exist. */
  private readonly namespaces = new Map<string, string>();
  private readonly readyNamespaces = new Set<string>();

  constructor(
    private readonly config: KubernetesConfig,
    private readonly api: KubernetesApi,
  ) {}

  get shared(): boolean {
    return this.config.namespaceMode === 'shared';
  }

  /** The namespace to list and watch in: the configured one, or null for all namespaces (per-user). */
  get scope(): string | null {
    return this.shared ? this.config.namespace : null;
  }

  /** Where the environment's objects are; null when it exists nowhere (per-user mode, an orphan not found). */
  async locate(spec: EnvironmentSpec): Promise<Located | null> {
    if (this.shared) return { id: spec.id, namespace: this.config.namespace };
    const known = this.namespaces.get(spec.id);
    if (known) return { id: spec.id, namespace: known };
    if (ENVIRONMENT_ID_PATTERN.test(spec.userId)) return { id: spec.id, namespace: userNamespace(this.config.namespace, spec.userId) };
    const found = await this.findNamespace(spec.id);
    return found ? { id: spec.id, namespace: found } : null;
  }

  /** Where a new environment goes: where it already is, else its owner's namespace. */
  async placeNew(spec: EnvironmentSpec): Promise<string> {
    const at = (await this.locate(spec)) ?? { id: spec.id, namespace: userNamespace(this.config.namespace, spec.userId) };
    return this.remember(spec.id, at.namespace);
  }

  /** Records where an environment was seen (per-user mode); returns the namespace. */
  remember(id: string, namespace: string): string {
    if (!this.shared) this.namespaces.set(id, namespace);
    return namespace;
  }

  /** The namespace an environment id was last seen in (per-user mode), else the configured one. */
  namespaceOf(id: string): string {
    return this.namespaces.get(id) ?? this.config.namespace;
  }

  forget(id: string): void {
    this.namespaces.delete(id);
  }

  /** Per-user namespaces are created on first use, labelled, with the baseline Pod Security level. */
  async ensureNamespace(spec: EnvironmentSpec, namespace: string): Promise<void> {
    if (this.shared || this.readyNamespaces.has(namespace)) return;
    await this.api.ensure(`create Namespace ${namespace}`, () => this.api.core.createNamespace({ body: namespaceFor(spec, namespace) }));
    this.readyNamespaces.add(namespace);
  }

  private async findNamespace(id: string): Promise<string | null> {
    const labelSelector = `${LABEL_ENVIRONMENT_ID}=${id}`;
    const lists = await Promise.all([
      this.api.call('list StatefulSets', () => this.api.apps.listStatefulSetForAllNamespaces({ labelSelector })),
      this.api.call('list PersistentVolumeClaims', () => this.api.core.listPersistentVolumeClaimForAllNamespaces({ labelSelector })),
      this.api.call('list ConfigMaps', () => this.api.core.listConfigMapForAllNamespaces({ labelSelector })),
    ]);
    for (const list of lists) {
      const namespace = list.items[0]?.metadata?.namespace;
      if (namespace) return this.remember(id, namespace);
    }
    return null;
  }
}
