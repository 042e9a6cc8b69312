import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, RbacAuthorizationV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { describeRuntimeContract, runToEnd } from '../runtime/runtime-contract.js';
import { eventually } from '../support/eventually.js';
import { kubernetesSpec, providerConfig } from '../support/kubernetes-fixtures.js';
import { kubernetesUnderTest } from '../support/kubernetes.js';
import type { SpecOverrides } from '../runtime/runtime-contract.js';

/**
 * KUBERNETES_NAMESPACE_MODE=per-user: each user's environments in `<prefix>-<user id>`, created on
 * first use. The provider runs as a ServiceAccount of its own bound to exactly the ClusterRole of
 * deploy/kubernetes/per-user-namespaces/rbac.yaml (so the other suites keep their namespaced Role).
 */
const kubernetes = inject('kubernetes');
const admin = new KubeConfig();
admin.loadFromFile(kubernetes.adminKubeconfig);

interface PerUserSetup {
  kubeconfig: string;
  prefix: string;
  cleanup(): Promise<void>;
}

/** A ServiceAccount bound to a copy of the per-user ClusterRole, and a kubeconfig with its token. */
async function perUserServiceAccount(): Promise<PerUserSetup> {
  const suffix = randomBytes(3).toString('hex');
  const name = `devpocket-per-user-${suffix}`;
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace: 'devpocket', body: { metadata: { name } } });
  const objects = KubernetesObjectApi.makeApiClient(admin);
  const file = join(import.meta.dirname, '../../deploy/kubernetes/per-user-namespaces/rbac.yaml');
  for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const object = document.toJS() as KubernetesObject & { roleRef?: { name: string }; subjects?: { name: string }[] };
    object.metadata = { ...object.metadata, name };
    if (object.roleRef) object.roleRef.name = name;
    if (object.subjects) object.subjects = object.subjects.map((subject) => ({ ...subject, name }));
    await objects.create(object);
  }
  const token = await core.createNamespacedServiceAccountToken({
    name,
    namespace: 'devpocket',
    body: { spec: { audiences: [], expirationSeconds: 7200 } },
  });
  const provider = new KubeConfig();
  provider.loadFromFile(kubernetes.providerKubeconfig);
  const cluster = provider.getCurrentCluster()!;
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [cluster],
    users: [{ name, token: token.status?.token }],
    contexts: [{ name, cluster: cluster.name, user: name }],
    currentContext: name,
  });
  const dir = mkdtempSync(join(tmpdir(), 'devpocket-per-user-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, config.exportConfig(), { mode: 0o600 });
  const prefix = `dppu-${suffix}`;
  return {
    kubeconfig,
    prefix,
    cleanup: async () => {
      const namespaces = await core.listNamespace();
      for (const namespace of namespaces.items) {
        const namespaceName = namespace.metadata?.name ?? '';
        if (namespaceName.startsWith(`${prefix}-`)) await core.deleteNamespace({ name: namespaceName }).catch(() => undefined);
      }
      await rbac.deleteClusterRoleBinding({ name }).catch(() => undefined);
      await rbac.deleteClusterRole({ name }).catch(() => undefined);
      await core.deleteNamespacedServiceAccount({ name, namespace: 'devpocket' }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every spec belongs to a user of its own: each lands in a namespace of its own. */
function perUserSpec(overrides?: SpecOverrides): EnvironmentSpec {
  return { ...kubernetesSpec(overrides), userId: randomBytes(12).toString('hex') };
}

describeRuntimeContract('kubernetes, a namespace per user', async () => {
  const setup = await perUserServiceAccount();
  return kubernetesUnderTest(
    providerConfig(setup.kubeconfig, setup.prefix, kubernetes.storageClass, 'per-user'),
    perUserSpec,
    setup.cleanup,
  );
});

describe('namespaces per user', () => {
  let setup: PerUserSetup;
  let runtime: KubernetesRuntime;

  beforeAll(async () => {
    setup = await perUserServiceAccount();
    runtime = new KubernetesRuntime(providerConfig(setup.kubeconfig, setup.prefix, kubernetes.storageClass, 'per-user'));
  });

  afterAll(async () => {
    await runtime?.onApplicationShutdown();
    await setup?.cleanup();
  });

  it("puts each user's environments into the user's own labelled namespace, and finds an orphan by its id alone", async () => {
    const first = perUserSpec();
    const second = { ...perUserSpec(), userId: first.userId };
    const other = perUserSpec();
    await Promise.all([runtime.provision(first), runtime.provision(second), runtime.provision(other)]);
    for (const spec of [first, second, other]) {
      await eventually(async () => expect((await runtime.status(spec)).state).toBe('running'), 60_000, 200);
    }
    const core = admin.makeApiClient(CoreV1Api);
    const namespace = await core.readNamespace({ name: `${setup.prefix}-${first.userId}` });
    expect(namespace.metadata?.labels).toMatchObject({
      'devpocket.io/user-id': first.userId,
      'pod-security.kubernetes.io/enforce': 'baseline',
    });
    const pods = await core.listNamespacedPod({ namespace: `${setup.prefix}-${first.userId}` });
    expect(pods.items.map((pod) => pod.metadata?.name).sort()).toEqual([`dp-${first.id}-0`, `dp-${second.id}-0`].sort());
    expect((await runToEnd(runtime, other, ['echo', 'elsewhere'])).text).toBe('elsewhere\n');

    // What the reconciler does with an environment it has no record of: only the id is known.
    const fresh = new KubernetesRuntime(providerConfig(setup.kubeconfig, setup.prefix, kubernetes.storageClass, 'per-user'));
    try {
      const orphan = { ...kubernetesSpec(), id: other.id, userId: 'unknown' };
      expect((await fresh.status(orphan)).state).toBe('running');
      await fresh.destroy(orphan);
      expect((await runtime.status(other)).state).toBe('absent');
    } finally {
      await fresh.onApplicationShutdown();
    }
    expect((await runtime.list()).sort()).toEqual([first.id, second.id].sort());
  });
});
