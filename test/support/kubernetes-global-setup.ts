/**
 * Vitest globalSetup of the `kubernetes` project: the cluster the Kubernetes runtime is tested
 * against, once per run. With KUBECONFIG set, that cluster (a real one; it must already have
 * deploy/kubernetes/ applied, and KUBERNETES_NAMESPACE/KUBERNETES_STORAGE_CLASS say where
 * environments go). Otherwise the local test cluster of test/support/k8s/testbed.ts (real API
 * server, controller-manager and scheduler; a real node, kubelet on containerd, where every
 * namespace runs its pods by default, and kwok's node, whose pods run local processes, for
 * namespaces annotated with `kwok.namespaceAnnotations`: the suites of faults only kwok produces
 * cheaply). The tests get it as `inject('kubernetes')`.
 */
import type { TestProject } from 'vitest/node';
import { type KwokNodeInfo, type RealNodeInfo, startTestCluster, type TestCluster } from './k8s/testbed.js';

export interface KubernetesUnderTest {
  /** The kubeconfig the provider uses: on the test cluster, the ServiceAccount bound to deploy/kubernetes' Role. */
  providerKubeconfig: string;
  /** A kubeconfig allowed to do anything (tests look and break things with it). */
  adminKubeconfig: string;
  namespace: string;
  /** The StorageClass of the home volumes in a namespace without a node-kind annotation (null: the cluster's default). */
  storageClass: string | null;
  /** True on the local test cluster (kwok stages, host paths of volumes). */
  testbed: boolean;
  /** Host directory of the volumes of kwok's pods on the test cluster, else null. */
  hostRoot: string | null;
  /** The test cluster's kwok node (its namespace annotations and StorageClass), else null. */
  kwok: KwokNodeInfo | null;
  /** The test cluster's real node (kubelet, containerd, images built here), else null. */
  realNode: RealNodeInfo | null;
}

declare module 'vitest' {
  export interface ProvidedContext {
    kubernetes: KubernetesUnderTest;
  }
}

let cluster: TestCluster | null = null;

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.KUBECONFIG;
  if (external) {
    process.stderr.write(`[test-k8s] using the cluster of KUBECONFIG=${external}\n`);
    project.provide('kubernetes', {
      providerKubeconfig: external,
      adminKubeconfig: external,
      namespace: process.env.KUBERNETES_NAMESPACE ?? 'devpocket-environments',
      storageClass: process.env.KUBERNETES_STORAGE_CLASS ?? null,
      testbed: false,
      hostRoot: null,
      kwok: null,
      realNode: null,
    });
    return;
  }
  const started = Date.now();
  cluster = await startTestCluster({ log: (line) => process.stderr.write(`[test-k8s] ${line}\n`) });
  process.stderr.write(`[test-k8s] test cluster ready at ${cluster.server} in ${Date.now() - started} ms (logs in ${cluster.dir})\n`);
  project.provide('kubernetes', {
    providerKubeconfig: cluster.providerKubeconfig,
    adminKubeconfig: cluster.adminKubeconfig,
    namespace: cluster.namespace,
    storageClass: cluster.storageClass,
    testbed: true,
    hostRoot: cluster.hostPaths.root,
    kwok: cluster.kwok,
    realNode: cluster.realNode,
  });
}

export async function teardown(): Promise<void> {
  const running = cluster;
  cluster = null;
  await running?.stop({ removeDir: true });
}
