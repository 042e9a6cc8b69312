import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

/**
 * KUBERNETES_NAMESPACE_MODE=per-user on the cluster under test: a ServiceAccount of its own bound
 * to exactly the cluster-wide rights of deploy/kubernetes/per-user-namespaces/rbac.yaml (so the
 * other suites keep their namespaced Role), and a kubeconfig with its token.
 *
 * The file's ClusterRole `devpocket-environment` and its ValidatingAdmissionPolicies are cluster
 * objects every such account shares (the runtime binds that ClusterRole by name): they are created
 * when missing and never removed. Its ClusterRoleBinding, and the ClusterRole that binding names,
 * are copied for the account (named after it, bound to it only).
 */
export interface PerUserServiceAccount {
  /** The ServiceAccount's name (in namespace `devpocket`). */
  name: string;
  kubeconfig: string;
  /** A namespace prefix of its own (`dppu-<suffix>`): every namespace its runtimes create starts with `<prefix>-`. */
  prefix: string;
  cleanup(): Promise<void>;
}

const RBAC_FILE = join(import.meta.dirname, '../../deploy/kubernetes/per-user-namespaces/rbac.yaml');

type RbacObject = KubernetesObject & { roleRef?: { name: string }; subjects?: { kind: string; name: string; namespace?: string }[] };

async function createUnlessPresent(client: KubernetesObjectApi, object: KubernetesObject): Promise<void> {
  try {
    await client.create(object);
  } catch (error) {
    if (!(error instanceof ApiException && error.code === 409)) throw error;
  }
}

export async function perUserServiceAccount(adminKubeconfig: string, providerKubeconfig: string): Promise<PerUserServiceAccount> {
  const admin = new KubeConfig();
  admin.loadFromFile(adminKubeconfig);
  const suffix = randomBytes(3).toString('hex');
  const name = `devpocket-per-user-${suffix}`;
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const objects = KubernetesObjectApi.makeApiClient(admin);
  await core.createNamespacedServiceAccount({ namespace: 'devpocket', body: { metadata: { name } } });

  const documents = parseAllDocuments(readFileSync(RBAC_FILE, 'utf8')).map((document) => document.toJS() as RbacObject);
  const ownRoles = new Set(documents.filter((object) => object.kind === 'ClusterRoleBinding').map((object) => object.roleRef?.name));
  const copies: { kind: string; name: string }[] = [];
  for (const object of documents) {
    const own = object.kind === 'ClusterRoleBinding' || (object.kind === 'ClusterRole' && ownRoles.has(object.metadata?.name));
    if (!own) {
      await createUnlessPresent(objects, object);
      continue;
    }
    const copy: RbacObject = { ...object, metadata: { ...object.metadata, name: `${object.metadata?.name ?? ''}-${suffix}` } };
    if (copy.roleRef) copy.roleRef = { ...copy.roleRef, name: `${copy.roleRef.name}-${suffix}` };
    if (copy.subjects) copy.subjects = copy.subjects.map((subject) => ({ ...subject, name }));
    await objects.create(copy);
    copies.push({ kind: object.kind ?? '', name: copy.metadata!.name! });
  }

  const token = await core.createNamespacedServiceAccountToken({
    name,
    namespace: 'devpocket',
    body: { spec: { audiences: [], expirationSeconds: 7200 } },
  });
  const provider = new KubeConfig();
  provider.loadFromFile(providerKubeconfig);
  const cluster = provider.getCurrentCluster()!;
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [cluster],
    users: [{ name, token: token.status?.token }],
    contexts: [{ name, cluster: cluster.name, user: name }],
    currentContext: name,
  });
  const dir = mkdtempSync(join(tmpdir(), 'devpocket-per-user-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, config.exportConfig(), { mode: 0o600 });
  const prefix = `dppu-${suffix}`;
  return {
    name,
    kubeconfig,
    prefix,
    cleanup: async () => {
      const namespaces = await core.listNamespace();
      for (const namespace of namespaces.items) {
        const namespaceName = namespace.metadata?.name ?? '';
        if (namespaceName.startsWith(`${prefix}-`)) await core.deleteNamespace({ name: namespaceName }).catch(() => undefined);
      }
      for (const copy of copies) {
        if (copy.kind === 'ClusterRoleBinding') await rbac.deleteClusterRoleBinding({ name: copy.name }).catch(() => undefined);
        else await rbac.deleteClusterRole({ name: copy.name }).catch(() => undefined);
      }
      await core.deleteNamespacedServiceAccount({ name, namespace: 'devpocket' }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
