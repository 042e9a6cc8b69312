import { inject } from 'vitest';
import type { KubernetesConfig } from '../../src/config/configuration.js';
import { providerConfig } from './kubernetes-fixtures.js';

export { kubernetesSpec } from './kubernetes-fixtures.js';

/** The provider's settings for a namespace of the cluster under test. */
export function kubernetesConfig(namespace: string): KubernetesConfig {
  const kubernetes = inject('kubernetes');
  return providerConfig(kubernetes.providerKubeconfig, namespace, kubernetes.storageClass);
}
