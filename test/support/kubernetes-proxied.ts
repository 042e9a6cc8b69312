import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import type { KubernetesConfig } from '../../src/config/namespaces/runtime.config.js';
import { KubernetesApi, type RetryPolicy } from '../../src/runtime/kubernetes/kubernetes-api.js';
import { KubernetesRuntime, type KubernetesRuntimeOptions } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { kubeconfigThrough, startFaultProxy, upstreamFromKubeConfig, type FaultProxy, type FaultProxyOptions } from './k8s/fault-proxy.js';
import { kubernetesConfig, type TestNode } from './kubernetes.js';
import { createTestNamespace } from './runtime-under-test.js';
import { createEnvironmentsApp, type EnvironmentsApp } from './environments.js';
import type { TestAppOptions } from './test-app.js';

/**
 * The Kubernetes runtime's provider behind the fault proxy (test/support/k8s/fault-proxy.ts), for
 * the suites that inject API-server faults: a proxy in front of the cluster's API server for the
 * provider's ServiceAccount, its kubeconfig through the proxy (as an object or a file for a whole
 * server), the whole server with its provider behind a proxy, and a namespace with a runtime through the proxy beside one that talks to the API
 * server directly.
 */

/** A fault proxy in front of the API server of the cluster under test, presenting what the provider's kubeconfig holds. */
export function startProviderProxy(options: Partial<FaultProxyOptions> = {}): Promise<FaultProxy> {
  return startFaultProxy({ ...upstreamFromKubeConfig(inject('kubernetes').providerKubeconfig), ...options });
}

/** The provider's kubeconfig (its ServiceAccount), reaching the API server through `proxy`. */
export function providerThrough(proxy: FaultProxy): KubeConfig {
  return kubeconfigThrough(proxy, inject('kubernetes').providerKubeconfig);
}

/** {@link providerThrough} as a file (mode 0600) in a new scratch directory, for a server's KUBECONFIG; remove() deletes both. */
export function providerKubeconfigFileThrough(proxy: FaultProxy, prefix: string): { file: string; remove(): void } {
  const scratch = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const file = join(scratch, 'through-proxy.kubeconfig');
  writeFileSync(file, providerThrough(proxy).exportConfig(), { mode: 0o600 });
  return { file, remove: () => rmSync(scratch, { recursive: true, force: true }) };
}

export interface AppBehindProxy {
  app: EnvironmentsApp;
  proxy: FaultProxy;
  /** For afterAll(): closes the application and the proxy, removes the kubeconfig. */
  close(): Promise<void>;
}

/**
 * The whole server (RUNTIME=kubernetes) whose provider reaches the API server through a new fault
 * proxy, with short API timeouts (2 s, 2 retries) so that injected faults surface quickly.
 */
export async function startAppBehindProxy(prefix: string, options: TestAppOptions = {}): Promise<AppBehindProxy> {
  const proxy = await startProviderProxy();
  const kubeconfig = providerKubeconfigFileThrough(proxy, prefix);
  try {
    const app = await createEnvironmentsApp({
      ...options,
      env: { KUBECONFIG: kubeconfig.file, KUBERNETES_REQUEST_TIMEOUT_MS: '2000', KUBERNETES_API_RETRIES: '2', ...options.env },
    });
    return {
      app,
      proxy,
      close: async () => {
        await app.close();
        await proxy.close();
        kubeconfig.remove();
      },
    };
  } catch (error) {
    await proxy.close();
    kubeconfig.remove();
    throw error;
  }
}

export interface ProxiedRuntimesOptions {
  /** The test namespace's name prefix. */
  prefix: string;
  /** Its node (default: the cluster's default node). */
  node?: TestNode;
  /** Settings of the runtime through the proxy (over those of the namespace). */
  config?: Partial<KubernetesConfig>;
  retryPolicy?: Partial<RetryPolicy>;
  runtime?: KubernetesRuntimeOptions;
}

export interface ProxiedRuntimes {
  namespace: string;
  proxy: FaultProxy;
  /** The runtime under test: its API requests go through the proxy. */
  runtime: KubernetesRuntime;
  /** A runtime over the same namespace that talks to the API server directly (to set up and look). */
  direct: KubernetesRuntime;
  /** Notes an environment for {@link afterEach} to destroy; returns it. */
  track(spec: EnvironmentSpec): EnvironmentSpec;
  /** For afterEach(): clears the proxy's rules and destroys the tracked environments. */
  afterEach(): Promise<void>;
  /** For afterAll(): shuts both runtimes down, closes the proxy, removes the namespace. */
  close(): Promise<void>;
}

/** A test namespace, a fault proxy and the two runtimes over them. */
export async function startProxiedRuntimes(options: ProxiedRuntimesOptions): Promise<ProxiedRuntimes> {
  const { namespace, remove } = await createTestNamespace(options.prefix, options.node ?? 'default');
  const proxy = await startProviderProxy();
  const base = kubernetesConfig(namespace, options.node);
  const config = { ...base, ...options.config };
  const runtime = new KubernetesRuntime(config, new KubernetesApi(config, providerThrough(proxy), options.retryPolicy), options.runtime);
  const direct = new KubernetesRuntime(base);
  const created: EnvironmentSpec[] = [];
  return {
    namespace,
    proxy,
    runtime,
    direct,
    track: (spec) => {
      created.push(spec);
      return spec;
    },
    afterEach: async () => {
      proxy.clear();
      for (const spec of created.splice(0)) await direct.destroy(spec);
    },
    close: async () => {
      await runtime.onApplicationShutdown();
      await direct.onApplicationShutdown();
      await proxy.close();
      await remove();
    },
  };
}
