import { KubernetesApi } from '../../src/runtime/kubernetes/kubernetes-api.js';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { EnvironmentSpec, RuntimeProvider } from '../../src/runtime/runtime.provider.js';
import { startTestCluster, type TestCluster } from '../../test/support/k8s/testbed.js';
import { createRuntimeNamespace, kubernetesSpec, providerConfig } from '../../test/support/kubernetes-fixtures.js';
import { median, percentile } from '../support/load.js';
import type { BenchContext } from '../context.js';

const CREATES = 5;

const log = (message: string): void => void process.stderr.write(`[bench] ${message}\n`);

async function until(runtime: RuntimeProvider, environment: EnvironmentSpec, state: string): Promise<void> {
  for (;;) {
    const status = await runtime.status(environment);
    if (status.state === state) return;
    if (status.state === 'failed') throw new Error(`environment failed: ${status.message ?? ''}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The Kubernetes runtime on the local test cluster (or KUBECONFIG's): create → running through the
 * provider (API objects created, scheduled, volume bound, container started, entrypoint ready), and
 * the provider's own API calls per lifecycle operation (counted by verb and resource).
 */
export async function kubernetes(_ctx: BenchContext): Promise<Record<string, unknown>> {
  let cluster: TestCluster | null = null;
  let providerKubeconfig = process.env.KUBECONFIG ?? '';
  let namespace = process.env.KUBERNETES_NAMESPACE ?? 'devpocket-environments';
  let storageClass = process.env.KUBERNETES_STORAGE_CLASS ?? null;
  if (!process.env.KUBECONFIG) {
    const started = performance.now();
    cluster = await startTestCluster({ log });
    log(`test cluster up in ${Math.round(performance.now() - started)} ms`);
    providerKubeconfig = cluster.providerKubeconfig;
    namespace = (await createRuntimeNamespace(cluster.adminKubeconfig, 'dp-bench')).namespace;
    storageClass = cluster.storageClass;
  }
  const config = providerConfig(providerKubeconfig, namespace, storageClass);
  const api = new KubernetesApi(config);
  const runtime = new KubernetesRuntime(config, api);
  try {
    const timings: number[] = [];
    const calls: Record<string, Record<string, number>> = {};
    const count = async (operation: string, action: () => Promise<unknown>): Promise<void> => {
      api.resetCallCounts();
      await action();
      calls[operation] ??= api.callCounts();
    };
    for (let i = 0; i < CREATES; i += 1) {
      const environment = kubernetesSpec({ template: { startup: { system: [], user: ['mkdir -p "$HOME/workspace"'] } } });
      const started = performance.now();
      await count('provision', () => runtime.provision(environment));
      await until(runtime, environment, 'running');
      timings.push(performance.now() - started);
      await count('status (running)', () => runtime.status(environment));
      await count('exec (echo)', async () => {
        const session = await runtime.exec(environment, ['echo', 'bench'], { tty: false });
        session.stream.resume();
        session.stream.end();
        await session.exit;
      });
      await count('stop', () => runtime.stop(environment));
      await count('status (stopped)', () => runtime.status(environment));
      await count('start', () => runtime.start(environment));
      await until(runtime, environment, 'running');
      await count('destroy', () => runtime.destroy(environment));
    }
    const sorted = [...timings].sort((a, b) => a - b);
    return {
      cluster: cluster ? 'local test cluster (kube-apiserver 1.36 + kwok nodes)' : 'KUBECONFIG',
      create_to_running_ms: {
        median: Math.round(median(timings)),
        max: Math.round(percentile(sorted, 100)),
        runs: timings.map(Math.round),
      },
      api_calls_per_operation: Object.fromEntries(
        Object.entries(calls).map(([operation, counts]) => [
          operation,
          { total: Object.values(counts).reduce((a, b) => a + b, 0), ...counts },
        ]),
      ),
    };
  } finally {
    await runtime.onApplicationShutdown();
    await cluster?.stop({ removeDir: true });
  }
}
