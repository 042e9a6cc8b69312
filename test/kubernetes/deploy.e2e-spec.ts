import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiException, AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import { statefulSetFor } from '../../src/runtime/kubernetes/manifests.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { runToEnd } from '../runtime/runtime-contract.js';
import { eventually } from '../support/eventually.js';
import { kubernetesSpec, providerConfig } from '../support/kubernetes-fixtures.js';

/**
 * deploy/kubernetes/ on the test cluster: the test cluster applied every file at start (with the
 * API server's strict validation); here, every object is there as written, the server's Deployment
 * is scheduled (on kwok's node, which runs no containers: in-cluster.e2e-spec.ts runs the server's
 * image for real), and the environments' namespace admits the
 * runtime's pods under its Pod Security level, as real containers on the real node, while refusing a
 * root one.
 */
describe.runIf(inject('kubernetes').testbed)('deploy/kubernetes', () => {
  const admin = new KubeConfig();
  admin.loadFromFile(inject('kubernetes').adminKubeconfig);
  const directory = join(import.meta.dirname, '../../deploy/kubernetes');
  const objects = readdirSync(directory)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(directory, file), 'utf8')).map((document) => document.toJS() as KubernetesObject),
    );

  it('every object of every file exists in the cluster', async () => {
    const client = KubernetesObjectApi.makeApiClient(admin);
    expect(objects.map((object) => object.kind)).toEqual(
      expect.arrayContaining(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'Secret', 'Deployment', 'Service']),
    );
    for (const object of objects) {
      const found = await client.read({
        apiVersion: object.apiVersion,
        kind: object.kind,
        metadata: { name: object.metadata!.name!, namespace: object.metadata?.namespace },
      });
      expect(found.metadata?.name).toBe(object.metadata?.name);
    }
  });

  it("schedules the server's two replicas, with probes on /health/live and /health/ready", async () => {
    const deployment = await admin.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: 'devpocket-server', namespace: 'devpocket' });
    expect(deployment.spec?.replicas).toBe(2);
    const container = deployment.spec?.template.spec?.containers[0];
    expect(container?.livenessProbe?.httpGet?.path).toBe('/health/live');
    expect(container?.readinessProbe?.httpGet?.path).toBe('/health/ready');
    expect(deployment.spec?.template.spec?.serviceAccountName).toBe('devpocket-server');
    await eventually(async () => {
      const pods = await admin
        .makeApiClient(CoreV1Api)
        .listNamespacedPod({ namespace: 'devpocket', labelSelector: 'app.kubernetes.io/name=devpocket-server' });
      expect(pods.items.filter((pod) => pod.spec?.nodeName && !pod.metadata?.deletionTimestamp)).toHaveLength(2);
    }, 60_000);
  });

  it("runs an environment in the environments' namespace under Pod Security restricted, as the provider, and refuses root there", async () => {
    const kubernetes = inject('kubernetes');
    const namespace = 'devpocket-environments';
    const core = admin.makeApiClient(CoreV1Api);
    expect((await core.readNamespace({ name: namespace })).metadata?.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'v1.36',
      'pod-security.kubernetes.io/audit': 'restricted',
      'pod-security.kubernetes.io/warn': 'restricted',
    });

    // The provider's ServiceAccount with the Role of 10-rbac.yaml, in the namespace of 00-namespaces.yaml.
    const config = providerConfig(kubernetes.providerKubeconfig, namespace, kubernetes.storageClass);
    const runtime = new KubernetesRuntime(config);
    const spec = kubernetesSpec();
    try {
      await runtime.provision(spec);
      await eventually(async () => expect((await runtime.status(spec)).state).toBe('running'), 60_000, 200);
      expect((await runToEnd(runtime, spec, ['id', '-u'])).text).toBe('1000\n');
      const pod = await core.readNamespacedPod({ name: `dp-${spec.id}-0`, namespace });
      if (kubernetes.realNode) expect(pod.spec?.nodeName).toBe(kubernetes.realNode.name);

      // A root template: the runtime refuses it before the API server would refuse its pod.
      const root: EnvironmentSpec = {
        ...kubernetesSpec(),
        template: { ...spec.template, image: 'example.com/tools/debian:12', runAsNonRoot: false, startup: { system: ['true'], user: [] } },
      };
      await expect(runtime.provision(root)).rejects.toThrow(/runs as root in its container \(run_as_non_root: false\)/);
      const rootPod = statefulSetFor(root, config, 1).spec!.template;
      const refused = await core
        .createNamespacedPod({
          namespace,
          dryRun: 'All',
          body: { metadata: { ...rootPod.metadata, name: `dp-${root.id}-0` }, spec: rootPod.spec },
        })
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ApiException);
      expect((refused as ApiException<unknown>).code).toBe(403);
      expect(JSON.stringify((refused as ApiException<unknown>).body)).toMatch(/violates PodSecurity (\\+)"restricted:v1\.36\1"/);
    } finally {
      await runtime.destroy(spec);
      await runtime.onApplicationShutdown();
    }
  }, 120_000);
});
