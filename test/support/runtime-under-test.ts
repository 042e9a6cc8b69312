import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';

/**
 * Which runtime the application under test uses. The `kubernetes` project of vitest.config.ts
 * runs the runtime-agnostic suites (the terminal's) again with DEVPOCKET_TEST_RUNTIME=kubernetes:
 * same tests, environments on the Kubernetes cluster of the run.
 */
export function testRuntimeKind(): 'local' | 'kubernetes' {
  return process.env.DEVPOCKET_TEST_RUNTIME === 'kubernetes' ? 'kubernetes' : 'local';
}

export interface TestRuntime {
  /** Environment variables that point the application at the runtime under test. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

function adminConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(inject('kubernetes').adminKubeconfig);
  return config;
}

/**
 * A namespace of its own for one test application, with the Role and RoleBinding of
 * deploy/kubernetes/10-rbac.yaml copied into it: test files run in parallel, and each server's
 * reconciler would take the others' environments for orphans in a shared namespace.
 */
export async function createTestNamespace(prefix = 'dp-test'): Promise<{ namespace: string; remove(): Promise<void> }> {
  const admin = adminConfig();
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

/** The runtime settings of one test application (a namespace of its own on Kubernetes). */
export async function prepareTestRuntime(): Promise<TestRuntime> {
  if (testRuntimeKind() === 'local') return { env: {}, cleanup: () => Promise.resolve() };
  const kubernetes = inject('kubernetes');
  const { namespace, remove } = await createTestNamespace();
  return {
    env: {
      RUNTIME: 'kubernetes',
      KUBECONFIG: kubernetes.providerKubeconfig,
      KUBERNETES_NAMESPACE: namespace,
      ...(kubernetes.storageClass ? { KUBERNETES_STORAGE_CLASS: kubernetes.storageClass } : {}),
    },
    cleanup: remove,
  };
}
