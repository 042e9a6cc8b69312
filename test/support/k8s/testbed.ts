/**
 * A real Kubernetes control plane on loopback for the tests, built from the Go module proxy
 * (tools/k8s-testbed): kine (etcd API on SQLite) → kube-apiserver (TLS, Node+RBAC authorization,
 * service-account tokens) → kube-controller-manager + kube-scheduler, with two kinds of node:
 * - `kwok-node-0`: kwok as its kubelet, with the kubelet emulator of ./pod-runner.ts making pods run
 *   local processes; it also produces, through the Stages of ./stages/, the failures a real node
 *   cannot produce cheaply (image pull errors, crash loops);
 * - `real-node-0` (./real-node.ts): a real kubelet on containerd and runc, whose pods are
 *   containers of images built here (./images.ts), with volumes of the StorageClass `testbed-local`
 *   provisioned by ./local-volumes.ts. Left out with `realNode: false`.
 *
 * A namespace chooses its node kind with an annotation (PodNodeSelector admission plugin,
 * {@link nodeKindAnnotations}): the cluster's default node selector sends every pod to the real node
 * (to kwok's when started with `realNode: false`), so the namespaces the runtime creates itself (one
 * per user) run real containers; `scheduler.alpha.kubernetes.io/node-selector:
 * testbed.devpocket.io/node-kind=kwok` sends a namespace's pods to kwok's node, for the faults only
 * it produces cheaply. The server's own namespace of deploy/kubernetes (`devpocket`) is annotated so:
 * its image is not built here.
 *
 * startTestCluster() then applies every manifest of deploy/kubernetes/ (validated strictly by the
 * API server) and writes two kubeconfigs: `adminKubeconfig` (system:masters) and
 * `providerKubeconfig`, a token of ServiceAccount devpocket/devpocket-server, so the provider runs
 * with exactly the Role of deploy/kubernetes/rbac.yaml.
 *
 * What the pods of this cluster do (see pod-runner.ts and ./stages/):
 * - a pod on the kwok node becomes Running/Ready only after its command was started and execs
 *   through the API server (`v5.channel.k8s.io`) run local processes with its environment;
 * - paths below a volumeMount's mountPath in env values, workingDir, command and args are rewritten
 *   to host directories (exec arguments are not: use the environment, e.g. `cat "$CONFIG_DIR/x"`);
 * - image `devpocket-test.invalid/pull-error…` → ErrImagePull then ImagePullBackOff, never Running;
 *   image `devpocket-test.invalid/crash-loop…` → CrashLoopBackOff (restartCount 1, last exit code 1);
 *   requests above the node's allocatable (32 CPU, 64Gi, 110 pods) → Unschedulable;
 * - PVCs of storage class `kwok-volume` bind at once (a kwok namespace's volumes); those of
 *   `testbed-local` wait for their pod to be scheduled to the real node (the default node's volumes).
 */
import { appendFileSync, existsSync, promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';

import { ensureTestbedBinaries, repoRoot, type TestbedBinaries, type TestbedLog } from './build.js';
import { generateClusterPki, type CertificatePair, type ClusterPki } from './certs.js';
import { type BuiltTemplate, ensureTestImages, type TestImages } from './images.js';
import { KubeRest, type KubeObject } from './kube-rest.js';
import { writeKubeconfig } from './kubeconfig.js';
import { LOCAL_STORAGE_CLASS, LocalVolumeProvisioner, localStorageClass } from './local-volumes.js';
import { POD_MARKER_ENV, PodRunner } from './pod-runner.js';
import { logTail, type ManagedProcess, spawnManaged, startWatchdog, stopManaged } from './processes.js';
import {
  NODE_KIND_LABEL,
  nodeKindAnnotations,
  type NodeKind,
  REAL_NODE_NAME,
  RealNode,
  RealNodeUnavailableError,
  realNodeProblems,
} from './real-node.js';

export { CRASH_LOOP_IMAGE_PREFIX, POD_MARKER_ENV, PULL_ERROR_IMAGE_PREFIX, STARTED_ANNOTATION } from './pod-runner.js';
export { LOCAL_STORAGE_CLASS } from './local-volumes.js';
export { NODE_KIND_LABEL, nodeKindAnnotations, REAL_NODE_NAME, RealNodeUnavailableError, type NodeKind } from './real-node.js';

export const ENVIRONMENTS_NAMESPACE = 'devpocket-environments';
/** The StorageClass of kwok's node (its volumes bind at once; the kubelet emulator makes them host directories). */
export const STORAGE_CLASS = 'kwok-volume';
/** deploy/kubernetes' namespace of the server itself: its pods go to kwok's node (the server's image is not built here). */
const SERVER_NAMESPACE = 'devpocket';
/** The ServiceAccount (namespace devpocket) whose token is in `providerKubeconfig`. */
export const PROVIDER_SERVICE_ACCOUNT = { namespace: 'devpocket', name: 'devpocket-server' } as const;
/** Nodes carrying this annotation are kwok's. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
export const NODE_ALLOCATABLE = { cpu: '32', memory: '64Gi', pods: '110' } as const;

export interface TestCluster {
  /** kubeconfig file: system:masters client certificate. */
  adminKubeconfig: string;
  /** kubeconfig file: bearer token of ServiceAccount devpocket/devpocket-server, namespace devpocket-environments. */
  providerKubeconfig: string;
  namespace: typeof ENVIRONMENTS_NAMESPACE;
  /** Where a namespace without a node-kind annotation runs its pods: `real`, or `kwok` when started with `realNode: false`. */
  defaultNodeKind: NodeKind;
  /** The StorageClass of the default node's volumes: `testbed-local` (real node) or `kwok-volume`. */
  storageClass: string;
  /** kwok's node: how a namespace sends its pods there, and its StorageClass. */
  kwok: KwokNodeInfo;
  /** Where the logs (one file per process), certificates, kubeconfigs and kine's database are. */
  dir: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** kwok's nodes. */
  nodeNames: readonly string[];
  /** The real node, or null when started with `realNode: false`. */
  realNode: RealNodeInfo | null;
  /** Host directories of the pods' volumes on kwok's node (see pod-runner.ts). */
  hostPaths: {
    root: string;
    volume(namespace: string, claimName: string): string;
    pod(uid: string): string;
  };
  /** Stops every process (pods' processes first). Removes `dir` and the volumes root only when asked to. */
  stop(options?: { removeDir?: boolean }): Promise<void>;
}

export interface KwokNodeInfo {
  /** The annotations that send a namespace's pods to kwok's node. */
  namespaceAnnotations: Record<string, string>;
  storageClass: typeof STORAGE_CLASS;
}

export interface RealNodeInfo {
  name: typeof REAL_NODE_NAME;
  /** The StorageClass whose claims the provisioner binds to `local` volumes on the real node. */
  storageClass: typeof LOCAL_STORAGE_CLASS;
  /** The annotations that send a namespace's pods to the real node. */
  namespaceAnnotations: Record<string, string>;
  /** The environment images in its containerd, by template (`devpocket/env-debian:1`): pods use them with imagePullPolicy IfNotPresent or Never. */
  images: Record<BuiltTemplate, string>;
  /** The host directory under which the provisioner makes the volumes' directories (`<root>/<PV name>`). */
  volumesRoot: string;
  /** The kubelet's cgroupRoot (pods' cgroups are under it in every hierarchy). */
  cgroupRoot: string;
}

export interface StartTestClusterOptions {
  /** Directory for logs, certificates, kubeconfigs and data; created if missing. Default: a new temporary directory. */
  dir?: string;
  log?: TestbedLog;
  /** Manifests applied at start, in name order. Default: deploy/kubernetes of this repository. */
  manifestsDir?: string;
  /** Start the real node beside kwok's (default true). It needs root and `npm run setup`'s packages and images. */
  realNode?: boolean;
}

const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16';
const SERVICE_CLUSTER_FIRST_IP = '10.96.0.1';
const POD_CIDR = '10.244.0.0/16';
const NODE_NAMES = ['kwok-node-0'] as const;
const STARTUP_TIMEOUT_MS = 90_000;
/** The Stages of kwok's pod/general that ./stages/ replaces. */
const REPLACED_KWOK_STAGES = new Set(['pod-ready', 'pod-delete']);
/** Delay of kwok's pod stages here (upstream: 1 s + up to 5 s jitter); their per-pod annotations still apply. */
const POD_STAGE_DELAY_MS = 100;

/** Loads a kubeconfig file. */
export function loadKubeConfig(file: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(file);
  return kubeConfig;
}

export async function startTestCluster(options: StartTestClusterOptions = {}): Promise<TestCluster> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[k8s-testbed] ${line}\n`));
  const binaries = await ensureTestbedBinaries(log);
  const withRealNode = options.realNode ?? true;
  let images: TestImages | null = null;
  if (withRealNode) {
    // Refuse before anything starts, with what is missing.
    const problems = await realNodeProblems(binaries);
    if (problems.length > 0) throw new RealNodeUnavailableError(problems);
    images = await ensureTestImages(log);
  }
  const started = Date.now();

  const dir = options.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'devpocket-k8s-')));
  await fs.mkdir(dir, { recursive: true });
  // For the watchdog: what to kill if this process dies without stop().
  const groupsFile = path.join(dir, 'process-groups');
  const podsFile = path.join(dir, 'pod-uids');
  await fs.writeFile(groupsFile, '');
  await fs.writeFile(podsFile, '');

  const processes: ManagedProcess[] = [];
  let runner: PodRunner | null = null;
  let root: string | null = null;
  const realNodeDir = path.join(dir, 'real-node');
  // Set once started: read by stop(), which may run while it still starts.
  const real: { node: RealNode | null; starting: Promise<RealNode> | null } = { node: null, starting: null };
  let provisioner: LocalVolumeProvisioner | null = null;
  const watchdog = startWatchdog(
    process.pid,
    groupsFile,
    podsFile,
    POD_MARKER_ENV,
    path.join(dir, 'watchdog.log'),
    withRealNode ? RealNode.teardownFor(realNodeDir) : undefined,
  );
  const start = async (name: string, command: string, args: string[], env: NodeJS.ProcessEnv = baseEnv()): Promise<ManagedProcess> => {
    const managed = spawnManaged({ name, command, args, env, cwd: dir, logFile: path.join(dir, `${name}.log`) });
    processes.push(managed);
    await fs.appendFile(groupsFile, `${String(managed.pid)}\n`);
    return managed;
  };

  const stop = async (stopOptions: { removeDir?: boolean } = {}): Promise<void> => {
    const stopping = Date.now();
    await runner?.stop();
    await provisioner?.stop();
    // The real node first (kubelet, sandboxes, containerd…), while the control plane still runs.
    await real.starting?.catch(() => undefined);
    if (real.node !== null) {
      const before = Date.now();
      await real.node.stop();
      log(`real node torn down in ${seconds(before)}`);
    }
    // Reverse order: kwok and the controllers before the API server, kine last.
    for (const managed of [...processes].reverse()) {
      const before = Date.now();
      await stopManaged(managed);
      if (Date.now() - before > 1_000) log(`${managed.name} took ${seconds(before)} to stop`);
    }
    await fs.writeFile(groupsFile, '').catch(() => undefined);
    await fs.writeFile(podsFile, '').catch(() => undefined);
    await stopManaged(watchdog, 1_000);
    if (stopOptions.removeDir === true) {
      if (root !== null) await fs.rm(root, { recursive: true, force: true });
      await fs.rm(dir, { recursive: true, force: true });
    }
    log(`test cluster stopped in ${seconds(stopping)}`);
  };

  try {
    const [kinePort, apiPort, controllerManagerPort, schedulerPort, kwokPort, kubeletPort] = await freePorts(6);
    const pki = await generateClusterPki(path.join(dir, 'pki'), SERVICE_CLUSTER_FIRST_IP);
    const server = `https://127.0.0.1:${String(apiPort)}`;
    const kubeconfig = async (name: string, user: CertificatePair): Promise<string> => {
      const file = path.join(dir, `${name}.kubeconfig`);
      await writeKubeconfig(file, server, pki.ca.cert, name, { cert: user.cert, key: user.key });
      return file;
    };
    const adminKubeconfig = await kubeconfig('admin', pki.admin);
    const controllerManagerKubeconfig = await kubeconfig('controller-manager', pki.controllerManager);
    const schedulerKubeconfig = await kubeconfig('scheduler', pki.scheduler);

    // containerd (and the host side of the real node) starts while the control plane does.
    if (images !== null) {
      real.starting = RealNode.start({
        dir: realNodeDir,
        logDir: dir,
        binaries,
        images,
        pki,
        server,
        kubeletPort,
        log,
        onProcessGroup: (pgid) => appendFileSync(groupsFile, `${String(pgid)}\n`),
      }).then((node) => (real.node = node));
      real.starting.catch(() => undefined);
    }

    // kine: the etcd API, on SQLite.
    const kine = await start('kine', binaries.kine, [
      `--listen-address=127.0.0.1:${String(kinePort)}`,
      `--endpoint=sqlite://${path.join(dir, 'kine.db')}?_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate&cache=shared`,
      '--metrics-bind-address=0',
    ]);
    await waitFor('kine to listen', () => canConnect(kinePort), [kine]);

    const defaultNodeKind: NodeKind = withRealNode ? 'real' : 'kwok';
    const apiserver = await start(
      'kube-apiserver',
      binaries.kubeApiserver,
      await apiserverArgs(pki, dir, apiPort, kinePort, defaultNodeKind),
    );
    const admin = new KubeRest(loadKubeConfig(adminKubeconfig));
    await waitFor(
      'kube-apiserver to be ready (/readyz)',
      async () => (await admin.request('GET', '/readyz').catch(() => null))?.status === 200,
      [apiserver],
    );
    log(`kube-apiserver ready at ${server} after ${seconds(started)}`);

    // Only once ready: they exit if the bootstrap RBAC policy is not in place yet.
    const controllerManager = await start('kube-controller-manager', binaries.kubeControllerManager, [
      ...componentArgs(controllerManagerKubeconfig, controllerManagerPort),
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.ca.cert}`,
      `--cluster-signing-cert-file=${pki.ca.cert}`,
      `--cluster-signing-key-file=${pki.ca.key}`,
      '--node-monitor-period=1s',
    ]);
    const scheduler = await start('kube-scheduler', binaries.kubeScheduler, componentArgs(schedulerKubeconfig, schedulerPort));

    // kwok: its CRDs, then its Stages and ours, then kwok itself.
    await applyDirectory(admin, binaries.kwokCrdDir);
    await waitFor(
      'kwok CRDs to be served',
      () => servesResources(admin, '/apis/kwok.x-k8s.io/v1alpha1', ['stages', 'execs', 'clusterexecs']),
      [apiserver],
    );
    await applyStages(admin, binaries);
    const kwok = await start('kwok', binaries.kwok, await kwokArgs(dir, pki, adminKubeconfig, kwokPort), {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
    });

    for (const name of NODE_NAMES) await createNode(admin, name);
    const control = [apiserver, controllerManager, scheduler, kwok];
    await waitFor('the kwok nodes to be Ready and untainted', () => nodesReady(admin, NODE_NAMES), control);
    log(`kwok nodes ready after ${seconds(started)}`);
    let realNodeInfo: RealNodeInfo | null = null;
    if (real.starting !== null && images !== null) {
      const node = await real.starting;
      await node.startKubelet();
      await waitFor(`the real node ${REAL_NODE_NAME} to be Ready and untainted`, () => nodesReady(admin, [REAL_NODE_NAME]), [
        ...control,
        ...node.processes,
      ]);
      const restored = await node.restoreKernelSettings();
      log(`real node ready after ${seconds(started)}${restored.length > 0 ? ` (kernel settings put back: ${restored.join(', ')})` : ''}`);
      await admin.apply(localStorageClass());
      const volumesRoot = path.join(dir, 'local-volumes');
      provisioner = await LocalVolumeProvisioner.start({
        kubeConfig: loadKubeConfig(adminKubeconfig),
        root: volumesRoot,
        nodeNames: [REAL_NODE_NAME],
        log,
      });
      realNodeInfo = {
        name: REAL_NODE_NAME,
        storageClass: LOCAL_STORAGE_CLASS,
        namespaceAnnotations: nodeKindAnnotations('real'),
        images: images.environments,
        volumesRoot,
        cgroupRoot: node.cgroupRoot,
      };
    }

    // Short: tmux and other unix sockets under pods' HOME must stay below ~100 bytes.
    const podRoot = await fs.mkdtemp('/tmp/dpk-');
    // Pods run as their runAsUser: the path to their volumes must be traversable by anyone.
    await fs.chmod(podRoot, 0o755);
    root = podRoot;
    runner = await PodRunner.start({
      kubeConfig: loadKubeConfig(adminKubeconfig),
      root: podRoot,
      nodeNames: NODE_NAMES,
      log,
      onStarting: (uid) => appendFileSync(podsFile, `${uid}\n`),
      onProcessGroup: (pgid) => appendFileSync(groupsFile, `${String(pgid)}\n`),
    });

    // deploy/kubernetes, validated by the API server.
    const manifestsDir = options.manifestsDir ?? path.join(repoRoot(), 'deploy', 'kubernetes');
    const namespaces = await applyManifests(admin, manifestsDir, log, defaultNodeKind === 'kwok' ? {} : { [SERVER_NAMESPACE]: 'kwok' });
    for (const namespace of namespaces) {
      await waitFor(
        `ServiceAccount ${namespace}/default`,
        async () => (await admin.getOrNull(`/api/v1/namespaces/${namespace}/serviceaccounts/default`)) !== null,
        control,
      );
    }

    const token = await admin.call<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${PROVIDER_SERVICE_ACCOUNT.namespace}/serviceaccounts/${PROVIDER_SERVICE_ACCOUNT.name}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 365 * 24 * 3600 } },
    );
    const providerKubeconfig = path.join(dir, 'provider.kubeconfig');
    await writeKubeconfig(
      providerKubeconfig,
      server,
      pki.ca.cert,
      'devpocket-server',
      { token: token.status.token },
      ENVIRONMENTS_NAMESPACE,
    );
    log(`test cluster up in ${seconds(started)} (logs in ${dir})`);

    const podRunner = runner;
    return {
      adminKubeconfig,
      providerKubeconfig,
      namespace: ENVIRONMENTS_NAMESPACE,
      defaultNodeKind,
      storageClass: defaultNodeKind === 'real' ? LOCAL_STORAGE_CLASS : STORAGE_CLASS,
      kwok: { namespaceAnnotations: nodeKindAnnotations('kwok'), storageClass: STORAGE_CLASS },
      dir,
      server,
      nodeNames: NODE_NAMES,
      realNode: realNodeInfo,
      hostPaths: {
        root: podRoot,
        volume: (namespace, claimName) => podRunner.volumeDir(namespace, claimName),
        pod: (uid) => podRunner.podDir(uid),
      },
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`Starting the test cluster failed (logs in ${dir}): ${message}`, { cause: error });
  }
}

// ---- processes and their flags -------------------------------------------------------------

function baseEnv(): NodeJS.ProcessEnv {
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

async function apiserverArgs(pki: ClusterPki, dir: string, port: number, kinePort: number, defaultNodeKind: NodeKind): Promise<string[]> {
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

function componentArgs(kubeconfig: string, port: number): string[] {
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

async function kwokArgs(dir: string, pki: ClusterPki, kubeconfig: string, port: number): Promise<string[]> {
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

// ---- objects -------------------------------------------------------------------------------

async function readManifests(file: string): Promise<KubeObject[]> {
  const text = await fs.readFile(file, 'utf8');
  const objects: KubeObject[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((error) => error.message).join('; ')}`);
    const value: unknown = document.toJS();
    if (value !== null && typeof value === 'object') objects.push(value as KubeObject);
  }
  return objects;
}

async function yamlFiles(dir: string): Promise<string[]> {
  const names = (await fs.readdir(dir)).filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml').sort();
  return names.map((name) => path.join(dir, name));
}

async function applyDirectory(admin: KubeRest, dir: string): Promise<void> {
  for (const file of await yamlFiles(dir)) {
    for (const object of await readManifests(file)) await admin.apply(object);
  }
}

/**
 * kwok's node/fast, node/heartbeat-with-lease, volume/fast (with StorageClass kwok-volume) and
 * pod/general Stages, the last with shorter delays and with pod-ready and pod-delete replaced by
 * ./stages/ (Running only once the emulator started the pod; pods it started are deleted by it), plus
 * the failure Stages of ./stages/.
 */
async function applyStages(admin: KubeRest, binaries: TestbedBinaries): Promise<void> {
  const kwokSets = ['node/fast', 'node/heartbeat-with-lease', 'volume/fast', 'pod/general'] as const;
  for (const set of kwokSets) {
    for (const file of await yamlFiles(binaries.kwokStageDirs[set])) {
      for (const object of await readManifests(file)) {
        if (object.kind === 'Stage' && REPLACED_KWOK_STAGES.has(object.metadata?.name ?? '')) continue;
        if (object.kind === 'Stage' && set === 'pod/general') shortenDelay(object);
        await admin.apply(object);
      }
    }
  }
  const ours = path.join(path.dirname(fileURLToPath(import.meta.url)), 'stages');
  await applyDirectory(admin, ours);
}

function shortenDelay(stage: KubeObject): void {
  const spec = stage.spec as { delay?: Record<string, unknown> } | undefined;
  if (spec?.delay === undefined) return;
  spec.delay.durationMilliseconds = POD_STAGE_DELAY_MS;
  delete spec.delay.jitterDurationMilliseconds;
}

/**
 * Applies every manifest of `dir` in file-name order; returns the namespaces it created. The
 * namespaces of `nodeKinds` get the annotation of their node kind (the test cluster's choice, not
 * the manifests').
 */
async function applyManifests(admin: KubeRest, dir: string, log: TestbedLog, nodeKinds: Record<string, NodeKind>): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const namespaces: string[] = [];
  for (const file of await yamlFiles(dir)) {
    for (const object of await readManifests(file)) {
      const kind = object.kind === 'Namespace' ? nodeKinds[object.metadata?.name ?? ''] : undefined;
      if (kind !== undefined) {
        const annotations = object.metadata?.annotations as Record<string, string> | undefined;
        object.metadata = { ...object.metadata, annotations: { ...annotations, ...nodeKindAnnotations(kind) } };
      }
      const what = `${object.kind ?? '?'} ${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? '?'}`;
      try {
        await admin.apply(object, {
          onWarning: (warning) => log(`API server warning for ${what} of ${path.relative(repoRoot(), file)}: ${warning}`),
        });
      } catch (error) {
        throw new Error(
          `The API server refused ${what} of ${path.relative(repoRoot(), file)}: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
          },
        );
      }
      if (object.kind === 'Namespace' && object.metadata?.name !== undefined) namespaces.push(object.metadata.name);
    }
  }
  return namespaces;
}

async function createNode(admin: KubeRest, name: string): Promise<void> {
  const response = await admin.request('POST', '/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node-role.kubernetes.io/agent': '',
        type: 'kwok',
        [NODE_KIND_LABEL]: 'kwok',
      },
    },
    status: { allocatable: { ...NODE_ALLOCATABLE }, capacity: { ...NODE_ALLOCATABLE } },
  });
  if (response.status !== 201 && response.status !== 409)
    throw new Error(`Creating node ${name}: HTTP ${String(response.status)}: ${response.text}`);
}

async function nodesReady(admin: KubeRest, names: readonly string[]): Promise<boolean> {
  for (const name of names) {
    const node = await admin.getOrNull<{
      spec?: { taints?: { key: string }[] };
      status?: { conditions?: { type: string; status: string }[] };
    }>(`/api/v1/nodes/${name}`);
    if (node === null) return false;
    const ready = node.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true;
    const tainted = (node.spec?.taints ?? []).some((taint) => taint.key.startsWith('node.kubernetes.io/'));
    if (!ready || tainted) return false;
  }
  return true;
}

async function servesResources(admin: KubeRest, path: string, resources: readonly string[]): Promise<boolean> {
  const list = await admin.getOrNull<{ resources?: { name: string }[] }>(path).catch(() => null);
  const served = new Set((list?.resources ?? []).map((resource) => resource.name));
  return resources.every((resource) => served.has(resource));
}

// ---- waiting -------------------------------------------------------------------------------

/** Polls `condition` until true; fails early, with the log's tail, if one of `processes` exits. */
async function waitFor(
  what: string,
  condition: () => Promise<boolean>,
  processes: readonly ManagedProcess[],
  timeoutMs = STARTUP_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = processes.find((managed) => managed.exitCode !== undefined);
    if (dead !== undefined) {
      throw new Error(
        `${dead.name} exited (code ${String(dead.exitCode)}, signal ${String(dead.signal)}) while waiting for ${what}:\n${await logTail(dead.logFile)}`,
      );
    }
    if (await condition().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${String(timeoutMs / 1000)} s waiting for ${what}`);
    await delay(100);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}
