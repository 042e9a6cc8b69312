import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { KubernetesApi, KubernetesApiError } from '../../src/runtime/kubernetes/kubernetes-api.js';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { EnvironmentSpec, RuntimeStatus } from '../../src/runtime/runtime.provider.js';
import { runToEnd } from '../runtime/runtime-contract.js';
import { eventually } from '../support/eventually.js';
import type { FaultProxy } from '../support/k8s/fault-proxy.js';
import { kubernetesConfig, kubernetesSpec } from '../support/kubernetes.js';
import { providerThrough, startProviderProxy, startProxiedRuntimes, type ProxiedRuntimes } from '../support/kubernetes-proxied.js';

/**
 * What the Kubernetes runtime does when the cluster misbehaves: API-server faults injected by a
 * proxy between the provider and the real API server (5xx, timeouts, dropped watches and exec
 * streams), and workloads that cannot run (produced by the test cluster's kwok stages, or by the
 * scheduler itself). On kwok's node of the test cluster, whose pods start in a fraction of a second
 * and whose Stages make image pulls fail and containers crash on demand (what a real node does with
 * memory and security is in kubernetes-real-containers.e2e-spec.ts).
 */
describe('Kubernetes runtime under faults', () => {
  const kubernetes = inject('kubernetes');
  let fixture: ProxiedRuntimes;
  let proxy: FaultProxy;
  let namespace: string;
  let runtime: KubernetesRuntime;
  let direct: KubernetesRuntime;
  const admin = new KubeConfig();
  admin.loadFromFile(kubernetes.adminKubeconfig);

  const newSpec = (overrides: Parameters<typeof kubernetesSpec>[0] = {}, resources?: EnvironmentSpec['resources']): EnvironmentSpec =>
    fixture.track({ ...kubernetesSpec(overrides), ...(resources ? { resources } : {}) });
  const state = async (spec: EnvironmentSpec): Promise<RuntimeStatus> => direct.status(spec);
  const provisionedAndFailed = async (spec: EnvironmentSpec): Promise<RuntimeStatus> => {
    await direct.provision(spec);
    return eventually(async () => {
      const current = await state(spec);
      expect(current.state).toBe('failed');
      return current;
    }, 60_000);
  };
  const running = (spec: EnvironmentSpec): Promise<unknown> =>
    eventually(async () => expect((await state(spec)).state).toBe('running'), 60_000, 200);

  beforeAll(async () => {
    // On kwok's node: its Stages fail pulls and crash containers on demand.
    fixture = await startProxiedRuntimes({
      prefix: 'dp-faults',
      node: 'kwok',
      config: { requestTimeoutMs: 2_000, apiRetries: 3 },
      retryPolicy: { baseDelayMs: 50, maxDelayMs: 400 },
      runtime: { watchRetryMs: 100, stopTimeoutMs: 60_000 },
    });
    ({ proxy, namespace, runtime, direct } = fixture);
  });

  afterEach(() => fixture.afterEach());

  afterAll(() => fixture?.close());

  it('retries 5xx answers during create, start and stop with backoff', async () => {
    const spec = newSpec();
    proxy.fail({ method: 'POST', path: /\/statefulsets/ }, { status: 503, times: 2 });
    proxy.fail({ method: 'POST', path: /\/persistentvolumeclaims/ }, { status: 500, times: 1 });
    proxy.resetLog();
    await runtime.provision(spec);
    expect(proxy.requests({ method: 'POST', path: /\/statefulsets/ }).map((request) => request.status)).toEqual([503, 503, 201]);
    await running(spec);

    proxy.fail({ method: 'PATCH', path: /\/statefulsets\// }, { status: 502, times: 2 });
    await runtime.stop(spec);
    expect((await state(spec)).state).toBe('stopped');
    proxy.fail({ method: 'PATCH', path: /\/statefulsets\// }, { status: 504, times: 1 });
    await runtime.start(spec);
    await running(spec);
  });

  it('gives up with the reason when the API server keeps failing, and a later attempt succeeds', async () => {
    const spec = newSpec();
    proxy.fail({ method: 'POST', path: /\/configmaps/ }, { status: 503, message: 'etcdserver: request timed out' });
    const failure = await runtime.provision(spec).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KubernetesApiError);
    expect((failure as Error).message).toMatch(
      /create ConfigMap dp-[0-9a-f]{24} failed after 4 attempt\(s\): etcdserver: request timed out \(HTTP 503\)/,
    );
    proxy.clear();
    await runtime.provision(spec);
    await running(spec);
  });

  it('retries a request that times out', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    proxy.hang({ method: 'PATCH', path: /\/statefulsets\// }, { times: 1 });
    proxy.resetLog();
    await runtime.stop(spec);
    expect((await state(spec)).state).toBe('stopped');
    expect(proxy.requests({ method: 'PATCH', path: /\/statefulsets\// })).toHaveLength(2);
  });

  it('retries exec when the API server fails the upgrade, and reports the reason when it keeps failing', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    proxy.fail({ path: /\/exec/ }, { status: 500, times: 2 });
    expect(await runToEnd(runtime, spec, ['echo', 'through-faults'])).toEqual({
      text: 'through-faults\n',
      exit: { code: 0, signal: null },
    });
    proxy.fail({ path: /\/exec/ }, { status: 503 });
    await expect(runtime.exec(spec, ['true'], { tty: false })).rejects.toThrow(
      /exec in environment [0-9a-f]{24} failed after 4 attempt\(s\)/,
    );
  });

  it('a dropped exec stream ends the session instead of hanging it', async () => {
    const spec = newSpec();
    await runtime.provision(spec);
    await running(spec);
    const session = await runtime.exec(spec, ['sleep', '1000'], { tty: true, cols: 80, rows: 24 });
    session.stream.resume();
    await eventually(() => expect(proxy.streams({ path: /\/exec/ }).length).toBeGreaterThan(0));
    proxy.dropStreams({ path: /\/exec/ });
    const exit = await session.exit;
    expect(exit.code === 0).toBe(false);
  });

  it('keeps an idle terminal alive through a proxy that cuts silent connections', async () => {
    const spec = newSpec();
    await direct.provision(spec);
    await running(spec);
    const strict = await startProviderProxy({ idleTimeoutMs: 1_500 });
    const through = (keepaliveMs: number): KubernetesRuntime => {
      const config = kubernetesConfig(namespace, 'kwok');
      return new KubernetesRuntime(config, new KubernetesApi(config, providerThrough(strict)), { execKeepaliveMs: keepaliveMs });
    };
    const withPings = through(300);
    const withoutPings = through(600_000);
    try {
      const kept = await withPings.exec(spec, ['bash', '--noprofile', '--norc'], { tty: true, cols: 80, rows: 24 });
      const cut = await withoutPings.exec(spec, ['bash', '--noprofile', '--norc'], { tty: true, cols: 80, rows: 24 });
      let screen = '';
      kept.stream.on('data', (chunk: Buffer) => (screen += chunk.toString()));
      cut.stream.resume();
      // Silent for twice the proxy's idle timeout: only the pinged session is still there.
      expect(await cut.exit).toEqual({ code: null, signal: 'SIGHUP' });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      kept.stream.write('echo still-$((20+22))\n');
      await eventually(() => expect(screen).toContain('still-42'));
      await kept.kill();
    } finally {
      await withPings.onApplicationShutdown();
      await withoutPings.onApplicationShutdown();
      await strict.close();
    }
  });

  it('resumes a dropped pod watch, and relists after 410 Gone, without missing a transition', async () => {
    const spec = newSpec();
    await direct.provision(spec);
    await running(spec);
    const seen: string[] = [];
    const unsubscribe = runtime.watch((id, status) => {
      if (id === spec.id) seen.push(status.state);
    });
    try {
      await eventually(() => expect(proxy.streams({ path: /watch=/ }).length).toBe(1), 20_000);
      // Dropped: the next watch resumes from the last resourceVersion.
      expect(proxy.dropStreams({ path: /watch=/ })).toBe(1);
      await direct.stop(spec);
      await eventually(() => expect(seen).toContain('stopped'), 30_000);

      // Too old: the API server answers 410 and the runtime lists again.
      await eventually(() => expect(proxy.streams({ path: /watch=/ }).length).toBe(1), 20_000);
      proxy.fail({ path: /watch=/ }, { status: 410, times: 1 });
      proxy.dropStreams({ path: /watch=/ });
      await direct.start(spec);
      await eventually(() => expect(seen.at(-1)).toBe('running'), 60_000);
      expect(
        proxy.requests({ method: 'GET', path: /\/pods\?/ }).filter((request) => !/watch=/.test(request.path)).length,
      ).toBeGreaterThanOrEqual(2);
    } finally {
      unsubscribe();
    }
  });

  it('leaves nothing behind after a delete, even through failing calls', async () => {
    const spec = newSpec({ template: { ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] } });
    await runtime.provision(spec);
    await running(spec);
    proxy.fail({ method: 'DELETE', path: /\/persistentvolumeclaims\// }, { status: 503, times: 2 });
    proxy.fail({ method: 'DELETE', path: /\/services\// }, { status: 500, times: 1 });
    await runtime.destroy(spec);
    const selector = `devpocket.io/environment-id=${spec.id}`;
    const core = admin.makeApiClient(CoreV1Api);
    const apps = admin.makeApiClient(AppsV1Api);
    const left = await Promise.all([
      apps.listNamespacedStatefulSet({ namespace, labelSelector: selector }),
      core.listNamespacedPod({ namespace, labelSelector: selector }),
      core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector: selector }),
      core.listNamespacedConfigMap({ namespace, labelSelector: selector }),
      core.listNamespacedService({ namespace, labelSelector: selector }),
    ]);
    expect(left.map((list) => list.items.length)).toEqual([0, 0, 0, 0, 0]);
    expect(await runtime.list()).not.toContain(spec.id);
  });

  describe('workloads that cannot run', () => {
    it('reports pending, then running, from the watch', async () => {
      const spec = newSpec();
      const seen: string[] = [];
      const unsubscribe = direct.watch((id, status) => {
        if (id === spec.id) seen.push(status.state);
      });
      try {
        await eventually(() => expect(direct.list()).resolves.toBeDefined());
        await direct.provision(spec);
        await eventually(() => expect(seen).toContain('running'), 60_000);
        expect(seen).toContain('pending');
        expect(seen.indexOf('pending')).toBeLessThan(seen.indexOf('running'));
      } finally {
        unsubscribe();
      }
    });

    // Needs the test cluster's kwok stages (a cluster of KUBECONFIG has none).
    it.skipIf(!kubernetes.testbed)('an image that cannot be pulled is failed, with the reason', async () => {
      const spec = newSpec({ template: { image: 'devpocket-test.invalid/pull-error:1' } });
      const status = await provisionedAndFailed(spec);
      expect(status.message).toMatch(/(ErrImagePull|ImagePullBackOff): image devpocket-test\.invalid\/pull-error:1 cannot be pulled/);
    });

    // Needs the test cluster's kwok stages (a cluster of KUBECONFIG has none).
    it.skipIf(!kubernetes.testbed)('a crash loop is failed, with the last exit code', async () => {
      const spec = newSpec({ template: { image: 'devpocket-test.invalid/crash-loop:1' } });
      const status = await provisionedAndFailed(spec);
      expect(status.message).toMatch(/keeps crashing \(last exit code 1/);
    });

    it('a pod no node can take is failed, with the scheduler’s reason', async () => {
      const spec = newSpec({}, { cpu: '500', memory: '256Mi', storage: '1Gi' });
      const status = await provisionedAndFailed(spec);
      expect(status.message).toMatch(/cannot be scheduled: .*Insufficient cpu/);
    });

    it('a deleted pod comes back, with the home volume and the session', async () => {
      const spec = newSpec();
      await direct.provision(spec);
      await running(spec);
      await runToEnd(direct, spec, ['sh', '-c', 'echo survived > "$HOME/kept.txt"']);
      const core = admin.makeApiClient(CoreV1Api);
      const name = `dp-${spec.id}-0`;
      const before = (await core.readNamespacedPod({ name, namespace })).metadata?.uid;
      expect(before).toEqual(expect.any(String));
      await core.deleteNamespacedPod({ name, namespace });
      // The StatefulSet made a new pod (a new uid), and the environment runs again in it.
      await eventually(async () => expect((await core.readNamespacedPod({ name, namespace })).metadata?.uid).not.toBe(before), 60_000, 200);
      await running(spec);
      expect((await runToEnd(direct, spec, ['cat', 'kept.txt'])).text).toBe('survived\n');
      expect((await runToEnd(direct, spec, ['tmux', 'has-session', '-t', `=devpocket_${spec.id}`])).exit.code).toBe(0);
    });
  });
});
