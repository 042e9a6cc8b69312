import { inject } from 'vitest';
import type { KubernetesConfig } from '../../src/config/namespaces/runtime.config.js';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { RuntimeUnderTest } from '../runtime/runtime-contract.js';
import { kubernetesSpec, providerConfig } from './kubernetes-fixtures.js';

export { kubernetesSpec };

/** Where a test namespace runs its pods: the cluster's default node (the real node on the test cluster), or kwok's node. */
export type TestNode = 'default' | 'kwok';

/** The provider's settings for a namespace of the cluster under test (home volumes of the StorageClass of the namespace's node). */
export function kubernetesConfig(namespace: string, node: TestNode = 'default'): KubernetesConfig {
  const kubernetes = inject('kubernetes');
  const storageClass = node === 'kwok' && kubernetes.kwok ? kubernetes.kwok.storageClass : kubernetes.storageClass;
  return providerConfig(kubernetes.providerKubeconfig, namespace, storageClass);
}

/**
 * The Kubernetes runtime for the contract suite: instances over `config`, specs from `spec`, and a
 * cleanup that destroys what is left (known by id only, as the reconciler knows orphans), shuts
 * the instances down, then calls `release`.
 */
export function kubernetesUnderTest(
  config: KubernetesConfig,
  spec: RuntimeUnderTest['spec'],
  release: () => Promise<void>,
): RuntimeUnderTest {
  const instances: KubernetesRuntime[] = [];
  const instance = (): KubernetesRuntime => {
    const created = new KubernetesRuntime(config);
    instances.push(created);
    return created;
  };
  const runtime = instance();
  return {
    runtime,
    spec,
    anotherInstance: () => Promise.resolve(instance()),
    cleanup: async () => {
      for (const id of await runtime.list()) await runtime.destroy({ ...kubernetesSpec(), id, userId: 'unknown' });
      for (const each of instances) await each.onApplicationShutdown();
      await release();
    },
  };
}
