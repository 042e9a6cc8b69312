import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { KubernetesConfig } from '../../src/config/configuration.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { contractTemplate, type SpecOverrides } from '../runtime/runtime-contract.js';

/** The provider's settings for a namespace of the cluster under test. */
export function kubernetesConfig(namespace: string): KubernetesConfig {
  const kubernetes = inject('kubernetes');
  return {
    kubeconfig: kubernetes.providerKubeconfig,
    namespace,
    storageClass: kubernetes.storageClass,
    imagePullPolicy: 'IfNotPresent',
    requestTimeoutMs: 15_000,
    apiRetries: 5,
  };
}

export function kubernetesSpec(overrides: SpecOverrides = {}): EnvironmentSpec {
  const template = contractTemplate(overrides.template);
  return {
    id: randomBytes(12).toString('hex'),
    slug: 'contract-test',
    userId: 'a'.repeat(24),
    template,
    resources: { cpu: '250m', memory: '256Mi', storage: '1Gi' },
    environmentVariables: { ...template.environmentVariables, ...overrides.environmentVariables },
  };
}
