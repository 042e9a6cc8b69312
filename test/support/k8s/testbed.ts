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
 * that copy's server need not run (test/kubernetes/in-cluster.e2e-spec.ts runs one for real).
 *
 * The control plane's flags are in ./control-plane-flags.ts, the objects it creates through the API in
 * ./cluster-objects.ts, its waits in ./waiting.ts.
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
import { appendFileSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { KubeConfig } from '@kubernetes/client-node';

import { ensureTestbedBinaries, repoRoot, type TestbedLog } from './build.js';
import { generateClusterPki, type CertificatePair } from './certs.js';
import { applyDirectory, applyManifests, applyStages, createNode, nodesReady, servesResources } from './cluster-objects.js';
import { apiserverArgs, baseEnv, componentArgs, kwokArgs, SERVICE_CLUSTER_FIRST_IP } from './control-plane-flags.js';
import { type BuiltTemplate, ensureTestImages, type TestImages } from './images.js';
import { KubeRest } from './kube-rest.js';
import { writeKubeconfig } from './kubeconfig.js';
import { LOCAL_STORAGE_CLASS, LocalVolumeProvisioner, localStorageClass } from './local-volumes.js';
import { POD_MARKER_ENV, PodRunner } from './pod-runner.js';
import { type ManagedProcess, spawnManaged, startWatchdog, stopManaged } from './processes.js';
import { nodeKindAnnotations, type NodeKind, REAL_NODE_NAME, RealNode, RealNodeUnavailableError, realNodeProblems } from './real-node.js';
import { canConnect, freePorts, seconds, waitFor } from './waiting.js';

export { CRASH_LOOP_IMAGE_PREFIX, POD_MARKER_ENV, PULL_ERROR_IMAGE_PREFIX, STARTED_ANNOTATION } from './pod-runner.js';
export { LOCAL_STORAGE_CLASS } from './local-volumes.js';
export { NODE_KIND_LABEL, nodeKindAnnotations, REAL_NODE_NAME, RealNodeUnavailableError, type NodeKind } from './real-node.js';
export { KWOK_NODE_ANNOTATION } from './control-plane-flags.js';
export { NODE_ALLOCATABLE } from './cluster-objects.js';

export const ENVIRONMENTS_NAMESPACE = 'devpocket-environments';
/** The StorageClass of kwok's node (its volumes bind at once; the kubelet emulator makes them host directories). */
export const STORAGE_CLASS = 'kwok-volume';
/** deploy/kubernetes' namespace of the server itself: its pods go to kwok's node (the in-cluster suite runs the server for real, in namespaces of its own). */
const SERVER_NAMESPACE = 'devpocket';
/** The ServiceAccount (namespace devpocket) whose token is in `providerKubeconfig`. */
export const PROVIDER_SERVICE_ACCOUNT = { namespace: 'devpocket', name: 'devpocket-server' } as const;

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
  /** The real node's containerd socket (`ctr --address`), for importing an image built after the cluster started. */
  containerdSocket: string;
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

const NODE_NAMES = ['kwok-node-0'] as const;

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
        containerdSocket: node.containerdSocket,
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
