import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { inject } from 'vitest';
import type { TestAccount } from '../support/accounts.js';
import type { EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import type { FaultProxy } from '../support/k8s/fault-proxy.js';
import { startAppBehindProxy, type AppBehindProxy } from '../support/kubernetes-proxied.js';
import { TerminalTestClient } from '../support/terminal-client.js';

/**
 * Environments through the REST API and the terminal, with RUNTIME=kubernetes: the whole server on
 * the cluster of the run (on the test cluster, real containers of the shipped templates' images on
 * its real node), its provider behind a fault-injecting proxy, authenticated as the ServiceAccount
 * bound to deploy/kubernetes' Role.
 */
describe('environments on Kubernetes, through the API', () => {
  const kubernetes = inject('kubernetes');
  const admin = new KubeConfig();
  admin.loadFromFile(kubernetes.adminKubeconfig);
  let proxy: FaultProxy;
  let behindProxy: AppBehindProxy | undefined;
  let app: EnvironmentsApp;
  let owner: TestAccount & { id: string };
  let namespace: string;

  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> =>
    app.json<T>(method, `/api/v1/environments${path}`, { token: owner.tokens.access_token, body });

  beforeAll(async () => {
    behindProxy = await startAppBehindProxy('devpocket-k8s-api');
    ({ app, proxy } = behindProxy);
    namespace = app.configuration.runtime.kubernetes.namespace;
    owner = await app.account('pro');
  }, 120_000);

  afterEach(() => proxy.clear());

  afterAll(() => behindProxy?.close(), 120_000);

  it('creates, runs, logs, measures, stops, starts and deletes an environment, leaving nothing behind', async () => {
    const env = await app.createRunning(owner, { name: 'On Kubernetes', template: 'debian' });
    expect(env).toMatchObject({ status: 'running', phase: 'running' });
    const done = await eventually(async () => {
      const body = await app.get(owner, env.id);
      if (!body.installation_completed) throw new Error('installation running');
      return body;
    }, 60_000);
    expect(done.installation_progress).toBe(100);

    const logs = await api<{ logs: string[] }>('GET', `/${env.id}/logs?lines=1000`);
    expect(logs.status).toBe(200);
    expect(logs.body.logs.some((line) => line.includes('[runtime] started: pod'))).toBe(true);
    const metrics = await api<{ memory_usage: number | null; disk_usage: number | null }>('GET', `/${env.id}/metrics`);
    expect(metrics.status).toBe(200);

    const apps = admin.makeApiClient(AppsV1Api);
    const workload = await apps.readNamespacedStatefulSet({ name: `dp-${env.id}`, namespace });
    expect(workload.metadata?.labels).toMatchObject({ 'devpocket.io/environment-id': env.id, 'devpocket.io/user-id': owner.id });
    expect(workload.spec?.template.spec?.automountServiceAccountToken).toBe(false);

    expect((await api('POST', `/${env.id}/stop`)).status).toBeLessThan(300);
    await app.waitForPhase(owner, env.id, 'stopped');
    expect((await apps.readNamespacedStatefulSet({ name: `dp-${env.id}`, namespace })).spec?.replicas).toBe(0);
    expect((await api('POST', `/${env.id}/start`)).status).toBeLessThan(300);
    await app.waitForPhase(owner, env.id, 'running');

    expect((await api('DELETE', `/${env.id}`)).status).toBe(200);
    await app.waitForPhase(owner, env.id, 'terminated');
    const core = admin.makeApiClient(CoreV1Api);
    const selector = `devpocket.io/environment-id=${env.id}`;
    const left = await Promise.all([
      apps.listNamespacedStatefulSet({ namespace, labelSelector: selector }),
      core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector: selector }),
      core.listNamespacedConfigMap({ namespace, labelSelector: selector }),
      core.listNamespacedPod({ namespace, labelSelector: selector }),
    ]);
    expect(left.map((list) => list.items.length)).toEqual([0, 0, 0, 0]);
  }, 180_000);

  it('an API server that keeps failing turns a create into error with the reason; a start afterwards recovers', async () => {
    proxy.resetLog();
    proxy.fail(
      { method: 'POST', path: /\/statefulsets/ },
      { status: 503, message: 'the server is currently unable to handle the request' },
    );
    const created = await api<{ id: string }>('POST', '/', { name: 'Unlucky', template: 'debian' });
    expect(created.status).toBe(201);
    const failed = await app.waitForPhase(owner, created.body.id, 'error');
    expect(failed.status).toBe('error');
    expect(failed.status_message).toMatch(
      /create StatefulSet dp-[0-9a-f]{24} failed after 3 attempt\(s\): the server is currently unable to handle the request \(HTTP 503\)/,
    );
    expect(proxy.requests({ method: 'POST', path: /\/statefulsets/ }).length).toBe(3);

    proxy.clear();
    expect((await api('POST', `/${created.body.id}/start`)).status).toBeLessThan(300);
    await app.waitForPhase(owner, created.body.id, 'running');
    expect((await api('DELETE', `/${created.body.id}`)).status).toBe(200);
    await app.waitForPhase(owner, created.body.id, 'terminated');
  }, 180_000);

  it('the pod watch moves a running environment to error when its new pod cannot pull its image', async () => {
    const env = await app.createRunning(owner, { name: 'Broken image', template: 'debian' });
    // Someone changes the image behind DevPocket's back: the StatefulSet replaces the pod, whose image
    // is not there and may not be pulled (ErrImageNeverPull, on any node, at once).
    const workspace = { name: 'workspace', image: 'devpocket-test.invalid/pull-error:2', imagePullPolicy: 'Never' };
    await admin.makeApiClient(AppsV1Api).patchNamespacedStatefulSet(
      {
        name: `dp-${env.id}`,
        namespace,
        body: { spec: { template: { spec: { containers: [workspace] } } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    // No reconciler pass is asked for: the runtime's pod watch tells the reconciler.
    const failed = await app.waitForPhase(owner, env.id, 'error', 60_000);
    expect(failed.status_message).toMatch(/image devpocket-test\.invalid\/pull-error:2 cannot be pulled/);
    expect((await api('DELETE', `/${env.id}`)).status).toBe(200);
    await app.waitForPhase(owner, env.id, 'terminated');
  }, 180_000);

  it('a pod deleted behind its back comes back; the terminal reconnects to a fresh session on the same home', async () => {
    const env = await app.createRunning(owner, { name: 'Resilient', template: 'debian' });
    const first = await TerminalTestClient.connect(app.baseUrl, env.id, { token: owner.tokens.access_token });
    await first.waitForFrame((f) => f.type === 'welcome');
    first.run('echo kept-on-volume > "$HOME/kept.txt"; echo written-$((2*21))');
    await first.waitForScreen(/written-42/);

    await admin.makeApiClient(CoreV1Api).deleteNamespacedPod({ name: `dp-${env.id}-0`, namespace });
    await first.close();
    await app.reconciler.reconcile();
    await eventually(async () => {
      const body = await app.get(owner, env.id);
      expect(body.phase).toBe('running');
      const second = await TerminalTestClient.connect(app.baseUrl, env.id, { token: owner.tokens.access_token });
      try {
        await second.waitForFrame((f) => f.type === 'welcome', 5_000);
        second.run('cat "$HOME/kept.txt"');
        await second.waitForScreen(/kept-on-volume/, 5_000);
      } finally {
        await second.close();
      }
    }, 60_000);
    expect((await api('DELETE', `/${env.id}`)).status).toBe(200);
    await app.waitForPhase(owner, env.id, 'terminated');
  }, 180_000);
});
