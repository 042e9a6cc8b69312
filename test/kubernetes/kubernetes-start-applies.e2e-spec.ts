import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, KubeConfig, StorageV1Api } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { EnvironmentsRepository } from '../../src/environments/environments.repository.js';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import { ANNOTATION_POD_TEMPLATE } from '../../src/runtime/kubernetes/objects.js';
import type { EnvironmentSpec, RuntimeProvider } from '../../src/runtime/runtime.provider.js';
import { runToEnd } from '../runtime/runtime-contract.js';
import type { TestAccount } from '../support/accounts.js';
import { createEnvironmentsApp, type EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import { FILESYSTEM_PARAMETER, LOCAL_VOLUME_PROVISIONER } from '../support/k8s/local-volumes.js';
import { createRuntimeNamespace, kubernetesSpec, providerConfig } from '../support/kubernetes-fixtures.js';

/**
 * What changed since an environment last started reaches its pod at the next start (docs/kubernetes.md,
 * "What a start applies"): variables, memory, the template's ports and version, a larger home volume
 * (grown in place, its files kept); an unchanged spec replaces no pod; a running pod of older settings
 * is never left running; a home volume never shrinks, nor grows where its StorageClass cannot expand.
 *
 * On the test cluster's real node, so that the kernel shows what the pod got: the cgroup's memory
 * limit, and `df` of a home volume of a StorageClass whose volumes are tmpfs mounts of the claim's
 * size (test/support/k8s/local-volumes.ts), grown by an expansion.
 */
const kubernetes = inject('kubernetes');
const real = kubernetes.realNode;

/** The container's memory limit in bytes (cgroup v2, else v1: runc mounts the container's own cgroup). */
const MEMORY_LIMIT = ['sh', '-c', 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'];
/** The size of the file system of the home directory, in KiB. */
const HOME_SIZE_KIB = ['sh', '-c', 'df -Pk "$HOME" | awk \'NR == 2 { print $2 }\''];

describe.skipIf(real === null)('a start applies what changed', () => {
  const admin = new KubeConfig();
  admin.loadFromFile(kubernetes.adminKubeconfig);
  const suffix = randomBytes(3).toString('hex');
  /** Expandable, its volumes tmpfs mounts of the claim's size. */
  const sized = `dp-sized-${suffix}`;
  /** Not expandable. */
  const fixed = `dp-fixed-${suffix}`;
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  const runtimes: KubernetesRuntime[] = [];
  const specs: EnvironmentSpec[] = [];

  const runtimeFor = (storageClass: string): KubernetesRuntime => {
    const runtime = new KubernetesRuntime(providerConfig(kubernetes.providerKubeconfig, namespace, storageClass));
    runtimes.push(runtime);
    return runtime;
  };
  const running = (runtime: RuntimeProvider, spec: EnvironmentSpec): Promise<void> =>
    eventually(
      async () => {
        const status = await runtime.status(spec);
        if (status.state !== 'running') throw new Error(`environment ${spec.id} is ${status.state}: ${status.message ?? ''}`);
      },
      120_000,
      250,
    );
  const output = async (runtime: RuntimeProvider, spec: EnvironmentSpec, argv: string[]): Promise<string> => {
    const { text, exit } = await runToEnd(runtime, spec, argv);
    expect(exit.code).toBe(0);
    return text.trim();
  };
  const readWorkload = (id: string) => admin.makeApiClient(AppsV1Api).readNamespacedStatefulSet({ name: `dp-${id}`, namespace });
  const readPod = (id: string) =>
    admin
      .makeApiClient(CoreV1Api)
      .readNamespacedPod({ name: `dp-${id}-0`, namespace })
      .catch(() => null);

  beforeAll(async () => {
    ({ namespace, remove: removeNamespace } = await createRuntimeNamespace(kubernetes.adminKubeconfig, 'dp-apply', {
      annotations: real!.namespaceAnnotations,
    }));
    const storage = admin.makeApiClient(StorageV1Api);
    for (const [name, expandable] of [
      [sized, true],
      [fixed, false],
    ] as const) {
      await storage.createStorageClass({
        body: {
          metadata: { name },
          provisioner: LOCAL_VOLUME_PROVISIONER,
          reclaimPolicy: 'Delete',
          volumeBindingMode: 'WaitForFirstConsumer',
          allowVolumeExpansion: expandable,
          parameters: expandable ? { [FILESYSTEM_PARAMETER]: 'tmpfs' } : {},
        },
      });
    }
  });

  afterAll(async () => {
    const [runtime] = runtimes;
    for (const spec of specs) await runtime?.destroy(spec).catch(() => undefined);
    for (const runtime of runtimes) await runtime.onApplicationShutdown();
    await removeNamespace?.();
    const storage = admin.makeApiClient(StorageV1Api);
    for (const name of [sized, fixed]) await storage.deleteStorageClass({ name }).catch(() => undefined);
  }, 180_000);

  describe('through the API', () => {
    let app: EnvironmentsApp;
    let owner: TestAccount & { id: string };

    beforeAll(async () => {
      app = await createEnvironmentsApp({
        env: { KUBECONFIG: kubernetes.providerKubeconfig, KUBERNETES_NAMESPACE: namespace, KUBERNETES_STORAGE_CLASS: sized },
      });
      owner = await app.account('pro');
    }, 120_000);

    afterAll(async () => app?.close(), 120_000);

    it('a stopped environment gets its new variables, memory limit and a larger home volume at the next start, its files kept', async () => {
      const created = await app.createRunning(owner, {
        name: 'Changes',
        template: 'debian',
        resources: { cpu: '500m', memory: '512Mi', storage: '1Gi' },
        environment_variables: { GREETING: 'hello' },
      });
      const spec = async (): Promise<EnvironmentSpec> =>
        app.service.specFor((await app.app.get(EnvironmentsRepository).findById(created.id))!);
      expect(await output(app.runtime, await spec(), ['printenv', 'GREETING'])).toBe('hello');
      expect(await output(app.runtime, await spec(), MEMORY_LIMIT)).toBe(String(512 * 2 ** 20));
      expect(Number(await output(app.runtime, await spec(), HOME_SIZE_KIB))).toBe(2 ** 20);
      await output(app.runtime, await spec(), ['sh', '-c', 'echo kept > "$HOME/kept.txt"']);

      const call = async (method: string, path: string, body?: unknown) =>
        app.json<Record<string, unknown>>(method, `/api/v1/environments/${created.id}${path}`, { token: owner.tokens.access_token, body });
      expect((await call('POST', '/stop')).status).toBe(202);
      await app.waitForPhase(owner, created.id, 'stopped');
      const put = await call('PUT', '', { environment_variables: { GREETING: 'changed' }, resources: { memory: '768Mi', storage: '2Gi' } });
      expect(put.status).toBe(200);
      // A home volume cannot shrink: refused at once, whatever the record says (the claim has 1Gi).
      const shrink = await call('PUT', '', { resources: { storage: '512Mi' } });
      expect(shrink.status).toBe(422);
      expect(shrink.body).toMatchObject({ errors: [{ field: 'resources.storage', code: 'storage_cannot_shrink' }] });
      expect(String(shrink.body.detail)).toMatch(/holds 1Gi and cannot shrink to 512Mi/);

      expect((await call('POST', '/start')).status).toBe(202);
      await app.waitForPhase(owner, created.id, 'running', 120_000);
      expect(await output(app.runtime, await spec(), ['printenv', 'GREETING'])).toBe('changed');
      expect(await output(app.runtime, await spec(), MEMORY_LIMIT)).toBe(String(768 * 2 ** 20));
      expect(await output(app.runtime, await spec(), ['cat', '/home/devpocket/kept.txt'])).toBe('kept');
      await eventually(async () => expect(Number(await output(app.runtime, await spec(), HOME_SIZE_KIB))).toBe(2 * 2 ** 20), 30_000);
      const claim = await admin.makeApiClient(CoreV1Api).readNamespacedPersistentVolumeClaim({ name: `dp-${created.id}-home`, namespace });
      expect(claim.spec?.resources?.requests?.storage).toBe('2Gi');
    });
  });

  describe('the runtime', () => {
    it('replaces no pod for an unchanged spec, and gives a changed template (version, ports, image) to the next pod', async () => {
      const runtime = runtimeFor(sized);
      const spec = kubernetesSpec({ environmentVariables: { GREETING: 'hello' } });
      specs.push(spec);
      await runtime.provision(spec);
      await running(runtime, spec);
      const pod = await readPod(spec.id);
      const workload = await readWorkload(spec.id);

      // Started again as it is: the same pod, the StatefulSet untouched.
      await runtime.start(spec);
      expect((await readPod(spec.id))?.metadata?.uid).toBe(pod?.metadata?.uid);
      expect((await readWorkload(spec.id)).metadata?.generation).toBe(workload.metadata?.generation);

      // Stopped and started unchanged: a new pod of the same revision.
      await runtime.stop(spec);
      await runtime.start(spec);
      await running(runtime, spec);
      const restarted = await readWorkload(spec.id);
      expect(restarted.status?.updateRevision).toBe(workload.status?.updateRevision);
      expect(restarted.metadata?.annotations?.[ANNOTATION_POD_TEMPLATE]).toBe(workload.metadata?.annotations?.[ANNOTATION_POD_TEMPLATE]);

      // A new template version with a port and another image (the python one, built for the real
      // node): the pod template, the Service and the running container follow.
      await runtime.stop(spec);
      const changed: EnvironmentSpec = {
        ...spec,
        template: {
          ...spec.template,
          version: '1.1.0',
          image: real!.images.python,
          ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        },
      };
      await runtime.start(changed);
      await running(runtime, changed);
      const updated = await readWorkload(spec.id);
      expect(updated.status?.updateRevision).not.toBe(workload.status?.updateRevision);
      expect(updated.spec?.template.spec?.containers[0]?.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
      expect((await readPod(spec.id))?.spec?.containers[0]?.image).toBe(real!.images.python);
      expect(await output(runtime, changed, ['python3', '-c', 'print(6 * 7)'])).toBe('42');
      const service = await admin.makeApiClient(CoreV1Api).readNamespacedService({ name: `dp-${spec.id}`, namespace });
      expect(service.spec?.ports?.map((port) => port.port)).toEqual([8080]);
      // And without it again, the Service goes.
      await runtime.start({ ...changed, template: { ...changed.template, ports: [] } });
      await running(runtime, spec);
      await expect(admin.makeApiClient(CoreV1Api).readNamespacedService({ name: `dp-${spec.id}`, namespace })).rejects.toMatchObject({
        code: 404,
      });
    });

    it('never leaves a running pod of older settings: a start replaces it before it returns', async () => {
      const runtime = runtimeFor(sized);
      const spec = kubernetesSpec({ environmentVariables: { GREETING: 'first' } });
      specs.push(spec);
      await runtime.provision(spec);
      await running(runtime, spec);
      const before = await readPod(spec.id);

      const changed = { ...spec, environmentVariables: { GREETING: 'second' } };
      await runtime.start(changed);
      // The old pod is gone by the time start returns; its replacement has the new settings.
      const after = await readPod(spec.id);
      expect(after?.metadata?.uid).not.toBe(before?.metadata?.uid);
      await running(runtime, changed);
      expect(await output(runtime, changed, ['printenv', 'GREETING'])).toBe('second');
    });

    it('refuses to shrink a home volume, and to grow one whose StorageClass cannot expand (naming it), changing nothing', async () => {
      const runtime = runtimeFor(fixed);
      const spec = kubernetesSpec();
      specs.push(spec);
      await runtime.provision(spec);
      await running(runtime, spec);
      await runtime.stop(spec);
      const template = (await readWorkload(spec.id)).metadata?.annotations?.[ANNOTATION_POD_TEMPLATE];

      // Told before the start when the runtime can tell (the PUT asks this)…
      expect(await runtime.checkStorage(spec, '2Gi')).toEqual({
        code: 'storage_not_expandable',
        message: `the home volume dp-${spec.id}-home cannot grow from 1Gi to 2Gi: its StorageClass "${fixed}" does not allow volume expansion`,
      });
      expect(await runtime.checkStorage(spec, '512Mi')).toMatchObject({ code: 'storage_cannot_shrink' });
      expect(await runtime.checkStorage(spec, '1Gi')).toBeNull();

      // …and refused by the start itself, before anything changes.
      const grown = { ...spec, environmentVariables: { GREETING: 'never' }, resources: { ...spec.resources, storage: '2Gi' } };
      await expect(runtime.start(grown)).rejects.toThrow(
        new RegExp(
          `the home volume dp-${spec.id}-home cannot grow from 1Gi to 2Gi: its StorageClass "${fixed}" does not allow volume expansion`,
        ),
      );
      const shrunk = { ...spec, resources: { ...spec.resources, storage: '512Mi' } };
      await expect(runtime.start(shrunk)).rejects.toThrow(
        /holds 1Gi and cannot shrink to 512Mi \(Kubernetes cannot shrink a PersistentVolumeClaim\)/,
      );
      const workload = await readWorkload(spec.id);
      expect(workload.spec?.replicas).toBe(0);
      expect(workload.metadata?.annotations?.[ANNOTATION_POD_TEMPLATE]).toBe(template);

      // Back to its size, it starts.
      await runtime.start(spec);
      await running(runtime, spec);
    });
  });
});
