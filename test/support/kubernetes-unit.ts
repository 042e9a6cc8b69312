import type { KubernetesConfig } from '../../src/config/namespaces/runtime.config.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import type { Template } from '../../src/templates/template.js';
import { contractTemplate } from '../runtime/runtime-contract-support.js';

/**
 * Fixtures of the Kubernetes runtime's unit specs (src/runtime/kubernetes/*.spec.ts), which build
 * manifests and read pods without a cluster: the provider's settings and an environment of a Python
 * template on DevPocket's image, non-root (the runtime contract's template, renamed).
 */

/** The provider's settings (shared namespace `envs`, Pod Security restricted), with `overrides`. */
export function unitKubernetesConfig(overrides: Partial<KubernetesConfig> = {}): KubernetesConfig {
  return {
    kubeconfig: null,
    namespace: 'envs',
    namespaceMode: 'shared',
    storageClass: null,
    imagePullPolicy: 'IfNotPresent',
    imageRegistry: null,
    podSecurityLevel: 'restricted',
    requestTimeoutMs: 1000,
    apiRetries: 3,
    ...overrides,
  };
}

/** An environment (fixed ids) of a Python template, with `template` and `environment` overrides. */
export function unitEnvironmentSpec(
  template: Partial<Template> = {},
  environment: Partial<Omit<EnvironmentSpec, 'template'>> = {},
): EnvironmentSpec {
  return {
    id: '0123456789abcdef01234567',
    slug: 'my-project',
    userId: 'fedcba9876543210fedcba98',
    resources: { cpu: '1', memory: '256Mi', storage: '5Gi' },
    environmentVariables: {},
    ...environment,
    template: contractTemplate({
      id: 't',
      name: 'python',
      displayName: 'Python',
      description: '',
      category: 'programming_language',
      version: '1.1.0',
      defaultPort: 8000,
      image: 'devpocket/env-python:1',
      workingDirectory: 'workspace',
      ports: [{ name: 'http', port: 8000, protocol: 'TCP' }],
      startup: { system: [], user: ['echo one'] },
      requiredCommands: ['bash'],
      defaultResources: { cpu: '500m', memory: '1Gi', storage: '5Gi' },
      ...template,
    }),
  };
}
