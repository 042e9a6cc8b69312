import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuthorizationV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { eventually } from './eventually.js';
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
  return {
    kubeconfig,
    namespace,
    namespaceMode,
    storageClass,
    imagePullPolicy: 'IfNotPresent',
    imageRegistry: null,
    podSecurityLevel: 'restricted',
    requestTimeoutMs: 15_000,
    apiRetries: 5,
  };
}

/** A fresh spec (new id) of the runtime contract's small template, with `overrides` applied. */
export function kubernetesSpec(overrides: SpecOverrides = {}): EnvironmentSpec {
  const template = contractTemplate(overrides.template);
  return {
    id: randomBytes(12).toString('hex'),
    slug: 'contract-test',
    userId: 'a'.repeat(24),
    template,
    // A whole core as the limit (a quarter requested): the contract's busy process must reach more than 0.3 of one in a real container.
    resources: { cpu: '1', memory: '256Mi', storage: '1Gi' },
    environmentVariables: { ...template.environmentVariables, ...overrides.environmentVariables },
  };
}

export interface RuntimeNamespaceOptions {
  /**
   * Annotations of the namespace: on the test cluster, a node kind's (`inject('kubernetes').kwok.namespaceAnnotations`
   * sends its pods to kwok's node; without one they go to the real node).
   */
  annotations?: Record<string, string>;
  /**
   * The Pod Security labels of deploy/kubernetes' environments namespace (default true), so that
   * the API server admits the runtime's pods exactly as in production. False for a namespace whose
   * pods are the test cluster's own probes.
   */
  podSecurity?: boolean;
}

const DEPLOY_DIR = join(import.meta.dirname, '../../deploy/kubernetes');

/** The `pod-security.kubernetes.io/*` labels of the environments namespace in deploy/kubernetes/00-namespaces.yaml. */
export function deployedPodSecurityLabels(): Record<string, string> {
  for (const document of parseAllDocuments(readFileSync(join(DEPLOY_DIR, '00-namespaces.yaml'), 'utf8'))) {
    const object = document.toJS() as KubernetesObject;
    if (object.kind !== 'Namespace' || object.metadata?.name !== 'devpocket-environments') continue;
    return Object.fromEntries(
      Object.entries(object.metadata.labels ?? {}).filter(([key]) => key.startsWith('pod-security.kubernetes.io/')),
    );
  }
  throw new Error('deploy/kubernetes/00-namespaces.yaml has no namespace devpocket-environments');
}

/**
 * A namespace of its own for one test application or benchmark, with the Role and RoleBinding of
 * deploy/kubernetes/10-rbac.yaml copied into it, so the provider's ServiceAccount has exactly the
 * verbs it has in production there, and the Pod Security labels of its environments namespace.
 * (Test files run in parallel, and each server's reconciler would take the others' environments for
 * orphans in a shared namespace.)
 */
/**
 * A new RoleBinding is in force only once the API server's authorizer has seen it (a moment later):
 * waits until the server's ServiceAccount may create a StatefulSet in `namespace`, so that the first
 * request of a test is not refused with 403.
 */
async function untilGranted(admin: KubeConfig, namespace: string): Promise<void> {
  const authorization = admin.makeApiClient(AuthorizationV1Api);
  await eventually(
    async () => {
      const review = await authorization.createSubjectAccessReview({
        body: {
          spec: {
            user: 'system:serviceaccount:devpocket:devpocket-server',
            groups: ['system:serviceaccounts', 'system:serviceaccounts:devpocket', 'system:authenticated'],
            resourceAttributes: { namespace, verb: 'create', group: 'apps', resource: 'statefulsets' },
          },
        },
      });
      if (!review.status?.allowed) throw new Error(`the runtime's Role is not in force in ${namespace} yet`);
    },
    30_000,
    200,
  );
}

export async function createRuntimeNamespace(
  adminKubeconfig: string,
  prefix: string,
  options: RuntimeNamespaceOptions = {},
): Promise<{ namespace: string; remove(): Promise<void> }> {
  const admin = new KubeConfig();
  admin.loadFromFile(adminKubeconfig);
  const namespace = `${prefix}-${randomBytes(4).toString('hex')}`;
  const core = admin.makeApiClient(CoreV1Api);
  const labels = { 'app.kubernetes.io/part-of': 'devpocket-tests', ...(options.podSecurity === false ? {} : deployedPodSecurityLabels()) };
  await core.createNamespace({ body: { metadata: { name: namespace, labels, annotations: options.annotations ?? {} } } });
  const objects = KubernetesObjectApi.makeApiClient(admin);
  const rbac = readFileSync(join(DEPLOY_DIR, '10-rbac.yaml'), 'utf8');
  for (const document of parseAllDocuments(rbac)) {
    const object = document.toJS() as KubernetesObject;
    if (object.kind !== 'Role' && object.kind !== 'RoleBinding') continue;
    await objects.create({ ...object, metadata: { ...object.metadata, namespace } });
  }
  await untilGranted(admin, namespace);
  return {
    namespace,
    remove: async () => {
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    },
  };
}
