import { randomBytes } from 'node:crypto';
import {
  ApiException,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1RoleBinding,
} from '@kubernetes/client-node';
import { inject } from 'vitest';
import { statusOf } from '../../src/runtime/kubernetes/kubernetes-api.js';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import { DEFAULT_INSTALLATION_ID } from '../../src/runtime/kubernetes/ownership.js';
import { ENVIRONMENT_CLUSTER_ROLE } from '../../src/runtime/kubernetes/placement.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { describeRuntimeContract, runToEnd } from '../runtime/runtime-contract.js';
import { eventually } from '../support/eventually.js';
import { kubernetesSpec, providerConfig } from '../support/kubernetes-fixtures.js';
import { kubernetesUnderTest } from '../support/kubernetes.js';
import { perUserServiceAccount as createPerUserServiceAccount, type PerUserServiceAccount } from '../support/kubernetes-per-user.js';
import type { SpecOverrides } from '../runtime/runtime-contract.js';

/**
 * KUBERNETES_NAMESPACE_MODE=per-user: each user's environments in `<prefix>-<user id>`, created on
 * first use (with the Pod Security labels of the installation's level). The provider runs as a
 * ServiceAccount of its own bound to exactly the cluster-wide rights of
 * deploy/kubernetes/per-user-namespaces/rbac.yaml (test/support/kubernetes-per-user.ts), so the other
 * suites keep their namespaced Role; in each namespace it creates, it binds the ClusterRole
 * `devpocket-environment` to itself, and it may exec nowhere else.
 * On the test cluster the namespaces it creates run their pods on the real node (the cluster's default).
 */
const kubernetes = inject('kubernetes');
const admin = new KubeConfig();
admin.loadFromFile(kubernetes.adminKubeconfig);

type PerUserSetup = PerUserServiceAccount;

function perUserServiceAccount(): Promise<PerUserSetup> {
  return createPerUserServiceAccount(kubernetes.adminKubeconfig, kubernetes.providerKubeconfig);
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
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'v1.36',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
    // Created by the runtime without a node-kind annotation: on the test cluster, the real node runs them.
    if (kubernetes.realNode) {
      const pod = (await core.listNamespacedPod({ namespace: `${setup.prefix}-${first.userId}` })).items[0];
      expect(pod?.spec?.nodeName).toBe(kubernetes.realNode.name);
    }
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

    // Its rights there come from the RoleBinding it made of devpocket-environment, to itself.
    const binding = await admin
      .makeApiClient(RbacAuthorizationV1Api)
      .readNamespacedRoleBinding({ name: ENVIRONMENT_CLUSTER_ROLE, namespace: `${setup.prefix}-${first.userId}` });
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: ENVIRONMENT_CLUSTER_ROLE });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: setup.name, namespace: 'devpocket' }]);
    expect(namespace.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'devpocket-server',
      'devpocket.io/installation': DEFAULT_INSTALLATION_ID,
    });
  });

  it('never holds exec outside the namespaces it created, and cannot grant it to itself there', async () => {
    const core = admin.makeApiClient(CoreV1Api);
    // A namespace DevPocket did not create, with a pod in it (whether it runs does not matter: authorization comes first).
    const foreign = `dp-foreign-${randomBytes(3).toString('hex')}`;
    await core.createNamespace({ body: { metadata: { name: foreign } } });
    try {
      await core.createNamespacedPod({
        namespace: foreign,
        body: {
          metadata: { name: 'target' },
          spec: {
            automountServiceAccountToken: false,
            containers: [{ name: 'main', image: 'devpocket/env-debian:1', command: ['sleep', '600'] }],
          },
        },
      });
      for (const [namespace, pod] of [
        [foreign, 'target'],
        ['kube-system', 'kube-apiserver'],
      ] as const) {
        const exec = runtime.api.openExec(namespace, pod, 'main', ['true'], false, () => undefined);
        await expect(exec).rejects.toMatchObject({ status: 403 });
        const review = await runtime.api.authorization.createSelfSubjectAccessReview({
          body: { spec: { resourceAttributes: { namespace, verb: 'create', resource: 'pods', subresource: 'exec' } } },
        });
        expect(review.status?.allowed).toBe(false);

        // `bind` on devpocket-environment would let it bind the role to itself anywhere: the admission policy refuses it.
        const body: V1RoleBinding = {
          metadata: { name: 'devpocket-escalation' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: ENVIRONMENT_CLUSTER_ROLE },
          subjects: [{ kind: 'ServiceAccount', name: setup.name, namespace: 'devpocket' }],
        };
        const refused = await runtime.api.rbac.createNamespacedRoleBinding({ namespace, body }).then(
          () => null,
          (error: unknown) => error,
        );
        expect(statusOf(refused)).toBe(403);
        expect(refused instanceof ApiException ? String(refused.body) : '').toMatch(
          /devpocket-environment may be bound only in namespaces DevPocket Server created/,
        );
      }
      // Nor may it bind any other role (no `bind` beyond devpocket-environment, and it holds no role's rights there).
      const other = await runtime.api.rbac
        .createNamespacedRoleBinding({
          namespace: foreign,
          body: {
            metadata: { name: 'devpocket-escalation' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
            subjects: [{ kind: 'ServiceAccount', name: setup.name, namespace: 'devpocket' }],
          },
        })
        .then(
          () => null,
          (error: unknown) => error,
        );
      expect(statusOf(other)).toBe(403);
    } finally {
      await core.deleteNamespace({ name: foreign }).catch(() => undefined);
    }

    // The shared mode's ServiceAccount (deploy/kubernetes/10-rbac.yaml) has no exec outside its namespace either.
    const shared = new KubeConfig();
    shared.loadFromFile(kubernetes.providerKubeconfig);
    const sharedReview = await shared.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: { namespace: 'kube-system', verb: 'create', resource: 'pods', subresource: 'exec' } } },
    });
    expect(sharedReview.status?.allowed).toBe(false);
  });
});
