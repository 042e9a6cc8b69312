/**
 * The command-line flags and configuration files of the test cluster's control-plane processes
 * (kube-apiserver, kube-controller-manager, kube-scheduler) and of kwok; started by ./testbed.ts.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { stringify } from 'yaml';

import type { ClusterPki } from './certs.js';
import { NODE_KIND_LABEL, type NodeKind } from './real-node.js';

/** Nodes carrying this annotation are kwok's. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16';
export const SERVICE_CLUSTER_FIRST_IP = '10.96.0.1';
const POD_CIDR = '10.244.0.0/16';

export function baseEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.homedir() };
}

/**
 * The API server's admission configuration: PodNodeSelector with the cluster's default node selector
 * (the real node's, or kwok's without one), which a namespace overrides with its annotation (see
 * {@link nodeKindAnnotations}).
 */
async function admissionConfiguration(dir: string, defaultNodeKind: NodeKind): Promise<string> {
  const podNodeSelector = path.join(dir, 'admission-podnodeselector.yaml');
  await fs.writeFile(
    podNodeSelector,
    stringify({ podNodeSelectorPluginConfig: { clusterDefaultNodeSelector: `${NODE_KIND_LABEL}=${defaultNodeKind}` } }),
  );
  const file = path.join(dir, 'admission.yaml');
  await fs.writeFile(
    file,
    stringify({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'AdmissionConfiguration',
      plugins: [{ name: 'PodNodeSelector', path: podNodeSelector }],
    }),
  );
  return file;
}

export async function apiserverArgs(
  pki: ClusterPki,
  dir: string,
  port: number,
  kinePort: number,
  defaultNodeKind: NodeKind,
): Promise<string[]> {
  return [
    `--etcd-servers=http://127.0.0.1:${String(kinePort)}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${String(port)}`,
    `--cert-dir=${path.join(dir, 'apiserver')}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    // As kubeadm: lets the controller-manager and scheduler delegate authentication without errors.
    `--requestheader-client-ca-file=${pki.ca.cert}`,
    '--requestheader-allowed-names=front-proxy-client',
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction,PodNodeSelector',
    `--admission-control-config-file=${await admissionConfiguration(dir, defaultNodeKind)}`,
    '--allow-privileged=true',
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    `--kubelet-client-certificate=${pki.apiserverKubeletClient.cert}`,
    `--kubelet-client-key=${pki.apiserverKubeletClient.key}`,
    `--kubelet-certificate-authority=${pki.ca.cert}`,
    '--kubelet-preferred-address-types=InternalIP',
    // The kubernetes Service's endpoint would be 127.0.0.1, which Endpoints validation refuses.
    '--endpoint-reconciler-type=none',
    '--profiling=false',
  ];
}

export function componentArgs(kubeconfig: string, port: number): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${String(port)}`,
    '--leader-elect=false',
    '--profiling=false',
  ];
}

export async function kwokArgs(dir: string, pki: ClusterPki, kubeconfig: string, port: number): Promise<string[]> {
  const config = path.join(dir, 'kwok.yaml');
  await fs.writeFile(
    config,
    stringify({
      apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
      kind: 'KwokConfiguration',
      options: {
        enableCRDs: ['Stage', 'Exec', 'ClusterExec'],
        manageAllNodes: false,
        manageNodesWithAnnotationSelector: `${KWOK_NODE_ANNOTATION}=fake`,
        nodeIP: '127.0.0.1',
        nodePort: port,
        serverAddress: `127.0.0.1:${String(port)}`,
        tlsCertFile: pki.kwokServing.cert,
        tlsPrivateKeyFile: pki.kwokServing.key,
        nodeLeaseDurationSeconds: 40,
        cidr: POD_CIDR,
        // kwok applies no defaults to a configuration file: these are its defaults.
        enableDebuggingHandlers: true,
        enableContentionProfiling: false,
        enableProfilingHandler: false,
        podPlayStageParallelism: 4,
        nodePlayStageParallelism: 4,
        nodeLeaseParallelism: 4,
        podsOnNodeSyncParallelism: 1,
        enablePodsOnNodeSyncListPager: true,
        enablePodsOnNodeSyncStreamWatch: false,
      },
    }),
  );
  return [`--config=${config}`, `--kubeconfig=${kubeconfig}`];
}
