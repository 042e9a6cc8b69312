import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { eventually } from '../support/eventually.js';

/**
 * deploy/kubernetes/ on the test cluster: the test cluster applied every file at start (with the
 * API server's strict validation); here, every object is there as written, and the server's
 * Deployment is scheduled (kwok runs no containers: the server itself is proven by the other suites).
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
});
