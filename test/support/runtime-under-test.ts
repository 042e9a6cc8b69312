import { inject } from 'vitest';
import { createRuntimeNamespace } from './kubernetes-fixtures.js';

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

/**
 * A namespace of its own on the cluster under test (see createRuntimeNamespace), whose pods run on
 * the cluster's default node (the test cluster's real node), or on kwok's node (`'kwok'`: for the
 * faults only kwok produces cheaply; on another cluster, the default node).
 */
export function createTestNamespace(
  prefix = 'dp-test',
  node: 'default' | 'kwok' = 'default',
): Promise<{ namespace: string; remove(): Promise<void> }> {
  const kubernetes = inject('kubernetes');
  const annotations = node === 'kwok' ? (kubernetes.kwok?.namespaceAnnotations ?? {}) : {};
  return createRuntimeNamespace(kubernetes.adminKubeconfig, prefix, { annotations });
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
