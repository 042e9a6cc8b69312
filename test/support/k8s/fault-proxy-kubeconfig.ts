/** Kubeconfigs and the fault-injecting proxy (./fault-proxy.ts): reach a cluster as its user would, or through the proxy. */
import { readFileSync } from 'node:fs';

import { type Cluster, KubeConfig, type User } from '@kubernetes/client-node';

import type { FaultProxy, FaultProxyOptions } from './fault-proxy-types.js';

function loadKubeConfig(source: string | KubeConfig): KubeConfig {
  if (typeof source !== 'string') return source;
  const kc = new KubeConfig();
  kc.loadFromFile(source);
  return kc;
}

function currentClusterAndUser(kc: KubeConfig): { cluster: Cluster; user: User | null } {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`kubeconfig: no cluster for the current context "${kc.getCurrentContext()}"`);
  return { cluster, user: kc.getCurrentUser() };
}

/**
 * Proxy options that reach the current cluster of a kubeconfig as its user would: server, CA,
 * skip-tls-verify, tls-server-name, and the user's client certificate and key if it has one.
 */
export function upstreamFromKubeConfig(source: string | KubeConfig): FaultProxyOptions {
  const { cluster, user } = currentClusterAndUser(loadKubeConfig(source));
  const pem = (data: string | undefined, file: string | undefined): Buffer | undefined =>
    data ? Buffer.from(data, 'base64') : file ? readFileSync(file) : undefined;
  return {
    upstream: cluster.server,
    ca: pem(cluster.caData, cluster.caFile),
    rejectUnauthorized: !cluster.skipTLSVerify,
    servername: cluster.tlsServerName,
    cert: pem(user?.certData, user?.certFile),
    key: pem(user?.keyData, user?.keyFile),
  };
}

/**
 * A copy of a kubeconfig (a file path or a KubeConfig) whose current cluster is the proxy: server
 * `proxy.url`, no CA, and `skipTLSVerify: true`, which client-node 1.4 requires for an http:// server
 * (it refuses one otherwise). The current user keeps its token, basic auth, exec and auth-provider
 * settings; its client certificate is left out (it cannot cross plain HTTP: give it to the proxy with
 * upstreamFromKubeConfig). Other clusters, users and contexts are copied unchanged. The source is not modified.
 */
export function kubeconfigThrough(proxy: Pick<FaultProxy, 'url'>, source: string | KubeConfig): KubeConfig {
  const original = loadKubeConfig(source);
  const { cluster, user } = currentClusterAndUser(original);
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: original.clusters.map((c): Cluster =>
      c.name === cluster.name ? { name: c.name, server: proxy.url, skipTLSVerify: true } : { ...c },
    ),
    users: original.users.map((u): User => {
      if (u.name !== user?.name) return { ...u };
      const { certData: _certData, certFile: _certFile, keyData: _keyData, keyFile: _keyFile, ...rest } = u;
      return rest;
    }),
    contexts: original.contexts.map((c) => ({ ...c })),
    currentContext: original.getCurrentContext(),
  });
  return copy;
}
