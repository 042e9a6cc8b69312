import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { SystemClock } from '../../src/common/clock/clock.js';
import { loadConfiguration } from '../../src/config/configuration.js';
import { KubernetesApi } from '../../src/runtime/kubernetes/kubernetes-api.js';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import { LocalRuntime } from '../../src/runtime/local/local-runtime.js';
import type { EnvironmentSpec, RuntimeProvider, TerminalAttachment } from '../../src/runtime/runtime.provider.js';
import { startTestCluster, type TestCluster } from '../../test/support/k8s/testbed.js';
import { createRuntimeNamespace, kubernetesSpec, providerConfig } from '../../test/support/kubernetes-fixtures.js';
import { median, percentile } from '../support/load.js';
import { COLS, type EchoResult, type Listener, measureEcho, quiet, ROWS, startCat, stopCat, type Terminal } from '../support/terminals.js';
import type { BenchContext } from '../context.js';

/** Environments taken through create → running, stop → stopped and start → running. */
const LIFECYCLES = Number(process.env.BENCH_K8S_ENVIRONMENTS ?? 3);
/** Keystrokes per echo measurement (one runtime each). */
const ECHO_SAMPLES = Number(process.env.BENCH_K8S_ECHO_SAMPLES ?? 400);

const log = (message: string): void => void process.stderr.write(`[bench] ${message}\n`);

async function until(runtime: RuntimeProvider, environment: EnvironmentSpec, state: string): Promise<void> {
  for (;;) {
    const status = await runtime.status(environment);
    if (status.state === state) return;
    if (status.state === 'failed') throw new Error(`environment failed: ${status.message ?? ''}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Milliseconds `action` took. */
async function timed(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

function summary(runs: number[]): { median: number; max: number; runs: number[] } {
  return {
    median: Math.round(median(runs)),
    max: Math.round(
      percentile(
        [...runs].sort((a, b) => a - b),
        100,
      ),
    ),
    runs: runs.map(Math.round),
  };
}

/** A runtime's terminal attachment (a tmux client in the environment) as a terminal the echo measure types into. */
class AttachedTerminal implements Terminal {
  lastOutputAt = 0;
  private readonly listeners = new Set<Listener>();

  constructor(readonly attachment: TerminalAttachment) {
    const decoder = new StringDecoder('utf8');
    attachment.stream.on('data', (chunk: Buffer) => {
      const at = performance.now();
      this.lastOutputAt = at;
      const text = decoder.write(chunk);
      for (const listener of this.listeners) listener(text, at);
    });
  }

  write(data: string): void {
    this.attachment.stream.write(data);
  }

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * Echo through `runtime.attachTerminal` on a running environment: a character typed at `cat` in
 * the environment's tmux session, timed until its echo comes back (the keystroke goes to the tmux
 * client, the tmux server, the pane's line discipline and back).
 */
async function echoThroughAttach(runtime: RuntimeProvider, environment: EnvironmentSpec): Promise<EchoResult> {
  const attachment = await runtime.attachTerminal(environment, { cols: COLS, rows: ROWS });
  const terminal = new AttachedTerminal(attachment);
  attachment.stream.on('error', () => undefined);
  try {
    await quiet(terminal, 500, 15_000); // the shell's prompt
    await startCat(terminal);
    const echo = await measureEcho(terminal, ECHO_SAMPLES);
    await stopCat(terminal);
    return echo;
  } finally {
    await attachment.kill();
  }
}

/** The local runtime (tmux on this host, no sandbox) in a scratch data directory: echo measured the same way. */
async function localEcho(): Promise<EchoResult> {
  // Short: tmux socket paths are limited to 107 bytes.
  const dataDir = mkdtempSync('/tmp/dp-bench-');
  const configuration = loadConfiguration({ RUNTIME: 'local', DATA_DIR: dataDir, NODE_ENV: 'test' });
  const runtime = new LocalRuntime(
    { ...configuration.runtime, localSandbox: 'none', localRoot: join(dataDir, 'environments') },
    configuration.app,
    new SystemClock(),
  );
  const environment = kubernetesSpec();
  try {
    await runtime.provision(environment);
    await until(runtime, environment, 'running');
    return await echoThroughAttach(runtime, environment);
  } finally {
    await runtime.destroy(environment).catch(() => undefined);
    await runtime.onApplicationShutdown();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The Kubernetes runtime on the local test cluster (or KUBECONFIG's), whose namespaces run real
 * containers on its real node: create → running (API objects created, pod scheduled, volume
 * provisioned and bound, container started, entrypoint ready), stop → stopped (pod gone), start →
 * running again, and the provider's own API calls per operation (counted by verb and resource);
 * then terminal echo through Kubernetes exec (`attachTerminal`) beside the local runtime's.
 */
export async function kubernetes(_ctx: BenchContext): Promise<Record<string, unknown>> {
  let cluster: TestCluster | null = null;
  let providerKubeconfig = process.env.KUBECONFIG ?? '';
  let namespace = process.env.KUBERNETES_NAMESPACE ?? 'devpocket-environments';
  let storageClass = process.env.KUBERNETES_STORAGE_CLASS ?? null;
  let removeNamespace: () => Promise<void> = () => Promise.resolve();
  if (!process.env.KUBECONFIG) {
    const started = performance.now();
    cluster = await startTestCluster({ log });
    log(`test cluster up in ${Math.round(performance.now() - started)} ms`);
    providerKubeconfig = cluster.providerKubeconfig;
    ({ namespace, remove: removeNamespace } = await createRuntimeNamespace(cluster.adminKubeconfig, 'dp-bench'));
    storageClass = cluster.storageClass;
  }
  const config = providerConfig(providerKubeconfig, namespace, storageClass);
  const api = new KubernetesApi(config);
  const runtime = new KubernetesRuntime(config, api);
  try {
    const runs = { create: [] as number[], stop: [] as number[], start: [] as number[] };
    const calls: Record<string, Record<string, number>> = {};
    const count = async (operation: string, action: () => Promise<unknown>): Promise<void> => {
      api.resetCallCounts();
      await action();
      calls[operation] ??= api.callCounts();
    };
    let echo: EchoResult | null = null;
    for (let i = 0; i < LIFECYCLES; i += 1) {
      const environment = kubernetesSpec({ template: { startup: { system: [], user: ['mkdir -p "$HOME/workspace"'] } } });
      runs.create.push(
        await timed(async () => {
          await count('provision', () => runtime.provision(environment));
          await until(runtime, environment, 'running');
        }),
      );
      await count('status (running)', () => runtime.status(environment));
      await count('exec (echo)', async () => {
        const session = await runtime.exec(environment, ['echo', 'bench'], { tty: false });
        session.stream.resume();
        session.stream.end();
        await session.exit;
      });
      if (echo === null) {
        log(`echo through Kubernetes exec (${ECHO_SAMPLES} keystrokes)…`);
        echo = await echoThroughAttach(runtime, environment);
      }
      runs.stop.push(
        await timed(async () => {
          await count('stop', () => runtime.stop(environment));
          await until(runtime, environment, 'stopped');
        }),
      );
      await count('status (stopped)', () => runtime.status(environment));
      runs.start.push(
        await timed(async () => {
          await count('start', () => runtime.start(environment));
          await until(runtime, environment, 'running');
        }),
      );
      await count('destroy', () => runtime.destroy(environment));
    }
    log(`echo through the local runtime (${ECHO_SAMPLES} keystrokes)…`);
    const local = await localEcho();
    return {
      cluster: cluster
        ? `local test cluster (kube-apiserver 1.36), ${cluster.realNode ? `real node ${cluster.realNode.name} (kubelet 1.36.3, containerd, runc)` : 'kwok node'}`
        : 'KUBECONFIG',
      environments: LIFECYCLES,
      create_to_running_ms: summary(runs.create),
      stop_to_stopped_ms: summary(runs.stop),
      start_to_running_ms: summary(runs.start),
      terminal_echo_ms: {
        note: 'a keystroke typed at cat through runtime.attachTerminal (a tmux client in the environment) until its echo',
        kubernetes_exec: echo,
        local_runtime: local,
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
    await removeNamespace().catch(() => undefined);
    await cluster?.stop({ removeDir: true });
  }
}
