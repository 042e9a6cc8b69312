import { setTimeout as delay } from 'node:timers/promises';
import type { RbacV1Subject, V1RoleBinding } from '@kubernetes/client-node';
import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';
import { ENVIRONMENT_ID_PATTERN, type EnvironmentSpec } from '../runtime.provider.js';
import { KubernetesApiError, type KubernetesApi } from './kubernetes-api.js';
import { LABEL_MANAGED_BY, MANAGED_BY, namespaceFor, userNamespace } from './manifests.js';
import type { Ownership } from './ownership.js';

/**
 * Per-user mode: the ClusterRole each user namespace binds to the runtime's own identity (a
 * RoleBinding of this name), the runtime's only rights there; see deploy/kubernetes/per-user-namespaces/.
 */
export const ENVIRONMENT_CLUSTER_ROLE = 'devpocket-environment';
/** How long a new RoleBinding may take to be honoured by the API server's authorizer. */
const ACCESS_TIMEOUT_MS = 15_000;

/** An environment and the namespace its objects are in. */
export interface Located {
  id: string;
  namespace: string;
}

/**
 * Which namespace an environment's objects are in: the configured one, or
 * (KUBERNETES_NAMESPACE_MODE=per-user) its owner's `<prefix>-<user id>`, created on first use with
 * a RoleBinding of the ClusterRole `devpocket-environment` to the runtime's own identity: the
 * runtime holds its namespaced rights (exec included) in DevPocket's namespaces only, never
 * cluster-wide. In per-user mode it remembers where each environment was seen (by the watch, the
 * listing or a lookup), and finds an environment known only by its id (an orphan the reconciler
 * found) by its labels across namespaces.
 */
export class NamespacePlacement {
  /** Per-user mode: the namespace each environment was found in, and the namespaces known to exist. */
  private readonly namespaces = new Map<string, string>();
  private readonly readyNamespaces = new Set<string>();
  /** Per-user mode: namespaces seen to exist (an environment of a user without one is absent: reading there would be forbidden, not 404). */
  private readonly existingNamespaces = new Set<string>();
  /** Who this runtime is to the API server (the subject of its RoleBindings), asked once. */
  private self: Promise<RbacV1Subject> | null = null;

  constructor(
    private readonly config: KubernetesConfig,
    private readonly api: KubernetesApi,
    private readonly ownership: Ownership,
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
    if (ENVIRONMENT_ID_PATTERN.test(spec.userId)) {
      const namespace = userNamespace(this.config.namespace, spec.userId);
      return (await this.namespaceExists(namespace)) ? { id: spec.id, namespace } : null;
    }
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

  /** Per-user namespaces are created on first use, labelled, with the installation's Pod Security level (KUBERNETES_POD_SECURITY_LEVEL). */
  async ensureNamespace(spec: EnvironmentSpec, namespace: string): Promise<void> {
    if (this.shared || this.readyNamespaces.has(namespace)) return;
    const body = this.ownership.label(namespaceFor(spec, namespace, this.config.podSecurityLevel));
    await this.api.ensure(`create Namespace ${namespace}`, () => this.api.core.createNamespace({ body }));
    await this.grantAccess(namespace);
    this.readyNamespaces.add(namespace);
  }

  /**
   * Binds the ClusterRole `devpocket-environment` to this runtime in `namespace` (a RoleBinding; one
   * that exists is kept), then waits until the API server honours it. The server may create such a
   * RoleBinding only because its ClusterRole grants `bind` on exactly that ClusterRole, and only in
   * namespaces labelled as DevPocket's (the ValidatingAdmissionPolicy of deploy/kubernetes/per-user-namespaces/).
   */
  private async grantAccess(namespace: string): Promise<void> {
    const subject = await this.subject();
    const binding: V1RoleBinding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: {
        name: ENVIRONMENT_CLUSTER_ROLE,
        namespace,
        labels: { 'app.kubernetes.io/part-of': 'devpocket', [LABEL_MANAGED_BY]: MANAGED_BY, ...this.ownership.labels },
      },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: ENVIRONMENT_CLUSTER_ROLE },
      subjects: [subject],
    };
    await this.api.ensure(`create RoleBinding ${ENVIRONMENT_CLUSTER_ROLE} in ${namespace}`, () =>
      this.api.rbac.createNamespacedRoleBinding({ namespace, body: binding }),
    );
    const deadline = Date.now() + ACCESS_TIMEOUT_MS;
    for (let pause = 50; ; pause = Math.min(1000, pause * 2)) {
      const review = await this.api.call(`review access to ${namespace}`, () =>
        this.api.authorization.createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { namespace, verb: 'create', group: 'apps', resource: 'statefulsets' } },
          },
        }),
      );
      if (review.status?.allowed === true) return;
      if (Date.now() > deadline) {
        throw new KubernetesApiError(
          `Kubernetes runtime: the RoleBinding ${ENVIRONMENT_CLUSTER_ROLE} in namespace ${namespace} does not let ${subject.kind} ${subject.name} ` +
            `create StatefulSets there; is the ClusterRole ${ENVIRONMENT_CLUSTER_ROLE} of deploy/kubernetes/per-user-namespaces/ applied?`,
          403,
        );
      }
      await delay(pause);
    }
  }

  /** This runtime's identity as an RBAC subject: its ServiceAccount, or the user of its kubeconfig (SelfSubjectReview). */
  private subject(): Promise<RbacV1Subject> {
    this.self ??= this.api
      .call('review own identity', () =>
        this.api.authentication.createSelfSubjectReview({
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
        }),
      )
      .then((review): RbacV1Subject => {
        const username = review.status?.userInfo?.username ?? '';
        const account = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
        if (account?.[1] && account[2]) return { kind: 'ServiceAccount', namespace: account[1], name: account[2] };
        if (username === '') throw new KubernetesApiError('Kubernetes runtime: the API server did not say who this runtime is', null);
        return { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: username };
      })
      .catch((error: unknown) => {
        this.self = null;
        throw error;
      });
    return this.self;
  }

  /**
   * Whether a user's namespace exists (asked once it does, every time until then). The runtime's
   * rights in a namespace come from the RoleBinding it makes there, so in one that does not exist
   * every read is forbidden (403), never "not found".
   */
  private async namespaceExists(name: string): Promise<boolean> {
    if (this.readyNamespaces.has(name) || this.existingNamespaces.has(name)) return true;
    const found = await this.api.find(`read Namespace ${name}`, () => this.api.core.readNamespace({ name }));
    if (found) this.existingNamespaces.add(name);
    return found !== null;
  }

  private async findNamespace(id: string): Promise<string | null> {
    const labelSelector = this.ownership.environmentSelector(id);
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
