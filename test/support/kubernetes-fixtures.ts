import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { KubernetesConfig } from '../../src/config/namespaces/runtime.config.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { contractTemplate, type SpecOverrides } from '../runtime/runtime-contract.js';

/**
 * Fixtures of the Kubernetes runtime's tests and benchmarks, free of vitest (the benchmarks use
 * them too): a namespace with the provider's Role, the provider's settings, environment specs.
 */

/** The provider's settings for a namespace of a cluster. */
export function providerConfig(
  kubeconfig: string,
  namespace: string,
  storageClass: string | null,
  namespaceMode: KubernetesConfig['namespaceMode'] = 'shared',
): KubernetesConfig {
  return { kubeconfig, namespace, namespaceMode, storageClass, imagePullPolicy: 'IfNotPresent', requestTimeoutMs: 15_000, apiRetries: 5 };
}

/** A fresh spec (new id) of the runtime contract's small template, with `overrides` applied. */
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

/**
 * A namespace of its own for one test application or benchmark, with the Role and RoleBinding of
 * deploy/kubernetes/10-rbac.yaml copied into it, so the provider's ServiceAccount has exactly the
 * verbs it has in production there. (Test files run in parallel, and each server's reconciler would
 * take the others' environments for orphans in a shared namespace.) `annotations` go on the namespace:
 * on the test cluster, the real node's `namespaceAnnotations` send its pods to the real node.
 */
export async function createRuntimeNamespace(
  adminKubeconfig: string,
  prefix: string,
  annotations: Record<string, string> = {},
): Promise<{ namespace: string; remove(): Promise<void> }> {
  const admin = new KubeConfig();
  admin.loadFromFile(adminKubeconfig);
  const namespace = `${prefix}-${randomBytes(4).toString('hex')}`;
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'app.kubernetes.io/part-of': 'devpocket-tests' }, annotations } },
  });
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
