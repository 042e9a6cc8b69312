import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

/**
 * A namespace of its own for one test application or benchmark, with the Role and RoleBinding of
 * deploy/kubernetes/10-rbac.yaml copied into it, so the provider's ServiceAccount has exactly the
 * verbs it has in production there. (Test files run in parallel, and each server's reconciler would
 * take the others' environments for orphans in a shared namespace.)
 */
export async function createRuntimeNamespace(adminKubeconfig: string, prefix: string): Promise<{ namespace: string; remove(): Promise<void> }> {
  const admin = new KubeConfig();
  admin.loadFromFile(adminKubeconfig);
  const namespace = `${prefix}-${randomBytes(4).toString('hex')}`;
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'app.kubernetes.io/part-of': 'devpocket-tests' } } } });
  const objects = KubernetesObjectApi.makeApiClient(admin);
  const rbac = readFileSync(join(import.meta.dirname, '../../deploy/kubernetes/10-rbac.yaml'), 'utf8');
  for (const document of parseAllDocuments(rbac)) {
    const object = document.toJS() as KubernetesObject;
    if (object.kind !== 'Role' && object.kind !== 'RoleBinding') continue;
    await objects.create({ ...object, metadata: { ...object.metadata, namespace } });
  }
  return {
    namespace,
    remove: async () => {
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    },
  };
}
