import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { LABEL_INSTALLATION } from '../../src/runtime/kubernetes/ownership.js';
import type { TestAccount } from '../support/accounts.js';
import { createEnvironmentsApp, type EnvironmentBody, type EnvironmentsApp } from '../support/environments.js';
import { createRuntimeNamespace } from '../support/kubernetes-fixtures.js';
import { perUserServiceAccount, type PerUserServiceAccount } from '../support/kubernetes-per-user.js';

/**
 * Two installations of DevPocket on one cluster (docs/kubernetes.md, "Installations"): two servers
 * with their own databases and installation ids (INSTALLATION_ID), in one shared namespace, and in
 * per-user mode (where each lists and watches across every namespace). Each labels its objects with
 * its id and lists, watches and cleans up only its own: neither reconciler takes the other's
 * environments for orphans. Objects without an id (made before ids existed) are adopted by the
 * installation that has their environment, and left alone by every other.
 */
const kubernetes = inject('kubernetes');
const admin = new KubeConfig();
admin.loadFromFile(kubernetes.adminKubeconfig);

interface Installation {
  id: string;
  app: EnvironmentsApp;
  owner: TestAccount & { id: string };
  environment: EnvironmentBody;
}

async function install(id: string, env: Record<string, string>): Promise<Installation> {
  const app = await createEnvironmentsApp({ env: { KUBECONFIG: kubernetes.providerKubeconfig, ...env, INSTALLATION_ID: id } });
  const owner = await app.account('pro');
  const environment = await app.createRunning(owner, {
    name: `Of ${id}`,
    template: 'debian',
    resources: { cpu: '500m', memory: '512Mi', storage: '1Gi' },
  });
  return { id, app, owner, environment };
}

/** Both reconcilers pass; neither destroys anything, each lists only its own environment, and both still run. */
async function expectNeitherTouchesTheOther(first: Installation, second: Installation): Promise<void> {
  for (const each of [first, second, first]) {
    const report = await each.app.reconciler.reconcile();
    expect(report.orphansDestroyed).toBe(0);
  }
  for (const each of [first, second]) {
    expect(await each.app.runtime.list()).toEqual([each.environment.id]);
    expect((await each.app.get(each.owner, each.environment.id)).phase).toBe('running');
    expect((await each.app.runtime.status(await specOf(each))).state).toBe('running');
  }
}

async function specOf(installation: Installation) {
  const { EnvironmentsRepository } = await import('../../src/environments/environments.repository.js');
  const record = await installation.app.app.get(EnvironmentsRepository).findById(installation.environment.id);
  return installation.app.service.specFor(record!);
}

describe('two installations on one cluster', () => {
  describe('in one namespace', () => {
    let namespace: string;
    let removeNamespace: () => Promise<void>;
    let blue: Installation;
    let green: Installation;

    beforeAll(async () => {
      // kwok's node where there is one: nothing here needs a real container.
      ({ namespace, remove: removeNamespace } = await createRuntimeNamespace(kubernetes.adminKubeconfig, 'dp-installs', {
        annotations: kubernetes.kwok?.namespaceAnnotations ?? {},
      }));
      const env = {
        KUBERNETES_NAMESPACE: namespace,
        ...((kubernetes.kwok?.storageClass ?? kubernetes.storageClass)
          ? { KUBERNETES_STORAGE_CLASS: kubernetes.kwok?.storageClass ?? kubernetes.storageClass! }
          : {}),
      };
      [blue, green] = await Promise.all([install('blue', env), install('green', env)]);
    }, 180_000);

    afterAll(async () => {
      await Promise.all([blue?.app.close(), green?.app.close()]);
      await removeNamespace?.();
    }, 180_000);

    it("labels every object with its installation, and each reconciler's clean-up leaves the other's environments alone", async () => {
      const apps = admin.makeApiClient(AppsV1Api);
      const core = admin.makeApiClient(CoreV1Api);
      for (const each of [blue, green]) {
        const id = each.environment.id;
        const workload = await apps.readNamespacedStatefulSet({ name: `dp-${id}`, namespace });
        expect(workload.metadata?.labels?.[LABEL_INSTALLATION]).toBe(each.id);
        expect(workload.spec?.template.metadata?.labels?.[LABEL_INSTALLATION]).toBe(each.id);
        const pod = await core.readNamespacedPod({ name: `dp-${id}-0`, namespace });
        expect(pod.metadata?.labels?.[LABEL_INSTALLATION]).toBe(each.id);
        const claim = await core.readNamespacedPersistentVolumeClaim({ name: `dp-${id}-home`, namespace });
        expect(claim.metadata?.labels?.[LABEL_INSTALLATION]).toBe(each.id);
        const config = await core.readNamespacedConfigMap({ name: `dp-${id}`, namespace });
        expect(config.metadata?.labels?.[LABEL_INSTALLATION]).toBe(each.id);
      }
      await expectNeitherTouchesTheOther(blue, green);
    });

    it('adopts its own objects made before installations had ids; unmarked objects of no environment of its own are left alone', async () => {
      const apps = admin.makeApiClient(AppsV1Api);
      const core = admin.makeApiClient(CoreV1Api);
      const id = blue.environment.id;
      // As a server of an earlier version left them: no installation label (the pod template keeps
      // its own, which would roll the pod; a StatefulSet of that version had none at all).
      const unlabel = { metadata: { labels: { [LABEL_INSTALLATION]: null } } };
      await apps.patchNamespacedStatefulSet({ name: `dp-${id}`, namespace, body: unlabel }, mergePatch);
      await core.patchNamespacedConfigMap({ name: `dp-${id}`, namespace, body: unlabel }, mergePatch);
      await core.patchNamespacedPersistentVolumeClaim({ name: `dp-${id}-home`, namespace, body: unlabel }, mergePatch);
      await core.patchNamespacedPod({ name: `dp-${id}-0`, namespace, body: unlabel }, mergePatch);
      // And the leftover of an environment neither installation knows (an earlier installation's).
      const stray = randomBytes(12).toString('hex');
      await core.createNamespacedConfigMap({
        namespace,
        body: {
          metadata: {
            name: `dp-${stray}`,
            labels: { 'app.kubernetes.io/managed-by': 'devpocket-server', 'devpocket.io/environment-id': stray },
          },
          data: { counts: '' },
        },
      });

      expect(await blue.app.runtime.list()).toEqual([]);
      expect((await blue.app.runtime.listUnclaimed()).sort()).toEqual([id, stray].sort());

      // The other installation leaves them alone: not its environments, and unmarked objects are never orphans.
      const other = await green.app.reconciler.reconcile();
      expect(other).toMatchObject({ adopted: 0, orphansDestroyed: 0 });
      expect(
        (await apps.readNamespacedStatefulSet({ name: `dp-${id}`, namespace })).metadata?.labels?.[LABEL_INSTALLATION],
      ).toBeUndefined();

      // Its own installation adopts its environment, and leaves the stray one alone too.
      const own = await blue.app.reconciler.reconcile();
      expect(own).toMatchObject({ adopted: 1, orphansDestroyed: 0 });
      expect(await blue.app.runtime.list()).toEqual([id]);
      expect(await blue.app.runtime.listUnclaimed()).toEqual([stray]);
      expect((await apps.readNamespacedStatefulSet({ name: `dp-${id}`, namespace })).metadata?.labels?.[LABEL_INSTALLATION]).toBe('blue');
      expect((await core.readNamespacedPod({ name: `dp-${id}-0`, namespace })).metadata?.labels?.[LABEL_INSTALLATION]).toBe('blue');
      expect((await core.readNamespacedConfigMap({ name: `dp-${stray}`, namespace })).metadata?.name).toBe(`dp-${stray}`);
      await expectNeitherTouchesTheOther(blue, green);
      await core.deleteNamespacedConfigMap({ name: `dp-${stray}`, namespace });
    });
  });

  describe('with a namespace per user', () => {
    let account: PerUserServiceAccount;
    let blue: Installation;
    let green: Installation;

    beforeAll(async () => {
      account = await perUserServiceAccount(kubernetes.adminKubeconfig, kubernetes.providerKubeconfig);
      const env = {
        KUBECONFIG: account.kubeconfig,
        KUBERNETES_NAMESPACE_MODE: 'per-user',
        KUBERNETES_NAMESPACE: account.prefix,
        ...(kubernetes.storageClass ? { KUBERNETES_STORAGE_CLASS: kubernetes.storageClass } : {}),
      };
      [blue, green] = await Promise.all([install('blue-per-user', env), install('green-per-user', env)]);
    }, 240_000);

    afterAll(async () => {
      await Promise.all([blue?.app.close(), green?.app.close()]);
      await account?.cleanup();
    }, 180_000);

    it("lists across namespaces only its own environments: each reconciler's clean-up leaves the other's alone", async () => {
      const core = admin.makeApiClient(CoreV1Api);
      for (const each of [blue, green]) {
        const namespace = `${account.prefix}-${each.owner.id}`;
        expect((await core.readNamespace({ name: namespace })).metadata?.labels?.[LABEL_INSTALLATION]).toBe(each.id);
      }
      await expectNeitherTouchesTheOther(blue, green);
    });
  });
});

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
