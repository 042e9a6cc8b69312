/**
 * The test cluster's real node: a kubelet v1.36.3 (built with the control plane, tools/k8s-testbed)
 * on Debian's containerd 1.6 and runc, with Debian's CNI plugins, beside kwok's node. Its pods are
 * real containers: images (./images.ts), securityContext, fsGroup, limits, volume mounts, seccomp and
 * exec are enforced by the kubelet and runc, not imitated.
 *
 * Everything is the cluster's own, under `dir` (passed by ./testbed.ts): containerd's root (a hard-link
 * copy of the cached one, with the images), state, socket and CNI configuration; the kubelet's root,
 * pod logs and volume plugins; a bridge `dpkbr<n>` with the subnet 10.245.<n>.0/24 (its gateway
 * address is the node's InternalIP, on which the kubelet serves); the cgroups under `devpocket-<id>`
 * in every hierarchy (the kubelet's cgroupRoot). The kubelet authenticates with a client certificate
 * of the cluster's CA (`system:node:real-node-0`, group `system:nodes`: the Node authorizer and
 * NodeRestriction apply) and serves with one; its API accepts the API server's client certificate and
 * checks every request with the API server (webhook), never anonymously.
 *
 * This host (see shared/real-kubernetes-node.md): cgroup v1 (hybrid), no systemd (`cgroupfs`), root
 * without CAP_SYS_RESOURCE (containerd's `restrict_oom_score_adj`, kubelet `oomScoreAdj: 0`). The
 * kubelet changes kernel settings when it starts (vm.overcommit_memory, kernel.panic,
 * kernel.panic_on_oops): they are read before and put back once the node is Ready
 * ({@link RealNode.restoreKernelSettings}); the bridge plugin turns on net.ipv4.ip_forward, put back
 * at the end. No kube-proxy: Services do not route; pods are reached by their IPs.
 *
 * Every thing made is appended to a state file as it is made; real-node-teardown.sh undoes them in
 * order (kubelet, pod sandboxes through the CRI, containerd, cgroups, mounts, NAT rules, bridge,
 * kernel settings), from stop() or from the watchdog when the test process died (./processes.ts).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { stringify } from 'yaml';

import { runLogged, type TestbedBinaries, type TestbedLog } from './build.js';
import { issueCertificate, type ClusterPki } from './certs.js';
import { copyContainerdRoot, type TestImages, which } from './images.js';
import { writeKubeconfig } from './kubeconfig.js';
import { type ManagedProcess, spawnManaged } from './processes.js';

export const REAL_NODE_NAME = 'real-node-0';
/** On every node of the test cluster: `kwok` or `real`. */
export const NODE_KIND_LABEL = 'testbed.devpocket.io/node-kind';
export type NodeKind = 'kwok' | 'real';
/** The PodNodeSelector admission plugin's namespace annotation. */
export const NAMESPACE_NODE_SELECTOR_ANNOTATION = 'scheduler.alpha.kubernetes.io/node-selector';

/**
 * The annotations that send a namespace's pods to one kind of node. Without them a namespace's pods
 * go to the real node (kwok's when the cluster has none): the API server's PodNodeSelector admission
 * plugin adds the cluster's default node selector, `testbed.devpocket.io/node-kind=real` (see ./testbed.ts).
 */
export function nodeKindAnnotations(kind: NodeKind): Record<string, string> {
  return { [NAMESPACE_NODE_SELECTOR_ANNOTATION]: `${NODE_KIND_LABEL}=${kind}` };
}

/** Read before the kubelet starts, put back once the node is Ready (and again at the end). */
const KERNEL_SETTINGS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
].map((name) => `/proc/sys/${name}`);
/**
 * Host directories the kubelet, containerd or the CNI library make when missing, whatever their
 * configuration (the kubelet's device manager socket is always /var/lib/kubelet/device-plugins/kubelet.sock):
 * removed at the end when nothing else is in them.
 */
const HOST_DIRS = ['/var/log/containers', '/run/containerd', '/var/lib/cni', '/var/lib/kubelet'];
const CNI_PLUGINS = ['bridge', 'host-local', 'portmap', 'loopback'];
const CNI_BIN_DIR = '/usr/lib/cni';
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SUBNET_PREFIX = '10.245';
const TEARDOWN_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'real-node-teardown.sh');

export class RealNodeUnavailableError extends Error {
  constructor(problems: readonly string[]) {
    super(
      `The test cluster's real node cannot run on this machine: ${problems.join('; ')}. ` +
        'Run `npm run setup` (as root); `npm run k8s:testbed -- --no-real-node` starts the cluster with kwok alone.',
    );
    this.name = 'RealNodeUnavailableError';
  }
}

export interface RealNodeOptions {
  /** The node's own directory (containerd, kubelet, CNI state); its logs go to `logDir`. */
  dir: string;
  logDir: string;
  binaries: TestbedBinaries;
  images: TestImages;
  pki: ClusterPki;
  /** The API server's URL. */
  server: string;
  /** A free TCP port for the kubelet's API. */
  kubeletPort: number;
  log: TestbedLog;
  /** Called with the process group of containerd and of the kubelet (for the watchdog). */
  onProcessGroup: (pgid: number) => void;
}

/** What keeps this host from running the real node; empty when nothing does. */
export async function realNodeProblems(binaries: TestbedBinaries): Promise<string[]> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('it needs root (containerd, runc, cgroups, network namespaces)');
  const missing = new Set<string>();
  const commands: Record<string, string> = {
    containerd: 'containerd',
    'containerd-shim-runc-v2': 'containerd',
    runc: 'runc',
    ip: 'iproute2',
    iptables: 'iptables',
    nft: 'nftables',
    umount: 'mount',
  };
  for (const [command, pkg] of Object.entries(commands)) if ((await which(command)) === null) missing.add(pkg);
  for (const plugin of CNI_PLUGINS) if (!existsSync(path.join(CNI_BIN_DIR, plugin))) missing.add('containernetworking-plugins');
  if (missing.size > 0) problems.push(`missing Debian packages: ${[...missing].join(', ')}`);
  for (const binary of [binaries.kubelet, binaries.crictl]) if (!existsSync(binary)) problems.push(`${binary} was not built`);
  const controllers = await cgroupV1Controllers();
  const needed = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'];
  const absent = needed.filter((controller) => !controllers.has(controller));
  if (absent.length > 0)
    problems.push(`no cgroup v1 hierarchy for ${absent.join(', ')} (the kubelet here is set up for this host's cgroup v1)`);
  if (!existsSync('/dev/kmsg')) problems.push('no /dev/kmsg (the kubelet watches it for OOM kills)');
  return problems;
}

export class RealNode {
  readonly name = REAL_NODE_NAME;
  readonly stateFile: string;
  /** containerd, then the kubelet once started. */
  readonly processes: ManagedProcess[] = [];

  private constructor(
    private readonly options: RealNodeOptions,
    readonly id: string,
    readonly nodeIp: string,
    readonly bridge: string,
    readonly cgroupRoot: string,
    readonly containerdSocket: string,
  ) {
    this.stateFile = RealNode.stateFileIn(options.dir);
  }

  static stateFileIn(dir: string): string {
    return path.join(dir, 'state');
  }

  /** For the watchdog: the script and the state file it runs it with. */
  static teardownFor(dir: string): { script: string; stateFile: string } {
    return { script: TEARDOWN_SCRIPT, stateFile: RealNode.stateFileIn(dir) };
  }

  /**
   * Prepares the host side (bridge, cgroups, kernel settings read, containerd's root with the images,
   * configuration files, the kubelet's credentials) and starts containerd. The kubelet starts with
   * {@link startKubelet} once the API server is ready. On failure, what was made is torn down.
   */
  static async start(options: RealNodeOptions): Promise<RealNode> {
    const problems = await realNodeProblems(options.binaries);
    if (problems.length > 0) throw new RealNodeUnavailableError(problems);
    // Paths go into TOML and JSON as they are, and unix socket paths are limited to 107 bytes.
    if (!/^[\w./-]+$/.test(options.dir) || options.dir.length > 70)
      throw new Error(`Unsuitable directory for the real node: ${options.dir}`);
    await fs.mkdir(options.dir, { recursive: true });
    const stateFile = RealNode.stateFileIn(options.dir);
    const id = randomBytes(4).toString('hex');
    const socket = path.join(options.dir, 'containerd.sock');
    const record = (key: string, value: string): Promise<void> => fs.appendFile(stateFile, `${key} ${value}\n`);
    await fs.writeFile(stateFile, '');
    await record('dir', options.dir);
    await record('socket', socket);
    await record('crictl', options.binaries.crictl);
    for (const dir of HOST_DIRS) if (!existsSync(dir)) await record('created', dir);
    // `iptables-save` alone lists only the tables that exist (`-t nat` would show an empty one).
    if (!(await commandText('iptables-save', []).catch(() => '')).includes('*nat')) await record('nat-table', 'absent');

    let node: RealNode | null = null;
    try {
      for (const file of KERNEL_SETTINGS) {
        const value = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
        if (value !== '') await record('sysctl', `${file} ${value}`);
      }
      const network = `devpocket-testbed-${id}`;
      await record('network', network);
      const { bridge, subnet, gateway } = await createBridge(record);
      const cgroupRoot = `devpocket-testbed-${id}`;
      await record('cgroup', cgroupRoot);
      await createCgroupRoot(cgroupRoot);
      node = new RealNode(options, id, gateway, bridge, cgroupRoot, socket);
      await node.writeConfiguration(network, bridge, subnet, gateway);
      await copyContainerdRoot(options.images, path.join(options.dir, 'containerd', 'root'));
      await node.startContainerd(record);
      return node;
    } catch (error) {
      await (node ?? new RealNode(options, id, '', '', '', socket)).stop().catch(() => undefined);
      throw error;
    }
  }

  /** Starts the kubelet; it registers the node `real-node-0` (labelled `testbed.devpocket.io/node-kind=real`). */
  async startKubelet(): Promise<void> {
    const dir = this.options.dir;
    const kubelet = spawnManaged({
      name: 'kubelet',
      command: this.options.binaries.kubelet,
      args: [
        `--config=${path.join(dir, 'kubelet.yaml')}`,
        `--kubeconfig=${path.join(dir, 'kubelet.kubeconfig')}`,
        `--root-dir=${path.join(dir, 'kubelet')}`,
        `--hostname-override=${this.name}`,
        `--node-ip=${this.nodeIp}`,
        `--node-labels=${NODE_KIND_LABEL}=real`,
      ],
      env: { PATH: HOST_PATH, HOME: process.env.HOME ?? os.homedir() },
      cwd: dir,
      logFile: path.join(this.options.logDir, 'kubelet.log'),
    });
    this.processes.push(kubelet);
    this.options.onProcessGroup(kubelet.pid);
    await fs.appendFile(this.stateFile, `kubelet-pid ${String(kubelet.pid)}\n`);
  }

  /** Puts back the kernel settings the kubelet changed when it started; returns what it put back. */
  async restoreKernelSettings(): Promise<string[]> {
    const restored: string[] = [];
    for (const line of (await fs.readFile(this.stateFile, 'utf8')).split('\n')) {
      const [key, file, value] = line.split(' ');
      if (key !== 'sysctl' || file === undefined || value === undefined || file.endsWith('/ip_forward')) continue;
      const current = (await fs.readFile(file, 'utf8')).trim();
      if (current === value) continue;
      await fs.writeFile(file, `${value}\n`);
      restored.push(`${file.slice('/proc/sys/'.length).replaceAll('/', '.')} ${current} → ${value}`);
    }
    return restored;
  }

  /** Tears everything down (real-node-teardown.sh); the logs stay. */
  async stop(): Promise<void> {
    if (!existsSync(this.stateFile)) return;
    const log = path.join(this.options.logDir, 'real-node-teardown.log');
    const code = await runLogged('bash', [TEARDOWN_SCRIPT, this.stateFile], '/', log, {});
    if (code !== 0) this.options.log(`real-node-teardown.sh exited with ${String(code)} (log: ${log})`);
    await fs.writeFile(this.stateFile, '');
  }

  // ---- setup -----------------------------------------------------------------------------------

  private async writeConfiguration(network: string, bridge: string, subnet: string, gateway: string): Promise<void> {
    const { dir, pki, server } = this.options;
    const cniDir = path.join(dir, 'cni');
    await fs.mkdir(cniDir, { recursive: true });
    // Debian's CNI plugins: a bridge of this cluster's own (the pods' gateway, with NAT to the outside),
    // host-local addresses, port mappings; containerd adds the loopback plugin itself.
    await fs.writeFile(
      path.join(cniDir, '10-devpocket-testbed.conflist'),
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name: network,
          plugins: [
            {
              type: 'bridge',
              bridge,
              isGateway: true,
              ipMasq: true,
              hairpinMode: true,
              ipam: {
                type: 'host-local',
                ranges: [[{ subnet, gateway }]],
                routes: [{ dst: '0.0.0.0/0' }],
                dataDir: path.join(dir, 'cni-ipam'),
              },
            },
            { type: 'portmap', capabilities: { portMappings: true } },
          ],
        },
        null,
        2,
      ),
    );

    const state = path.join(dir, 'containerd', 'state');
    await fs.writeFile(
      path.join(dir, 'containerd.toml'),
      [
        'version = 2',
        `root = "${path.join(dir, 'containerd', 'root')}"`,
        `state = "${state}"`,
        'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]',
        '[grpc]',
        `  address = "${this.containerdSocket}"`,
        '[ttrpc]',
        `  address = "${this.containerdSocket}.ttrpc"`,
        '[plugins]',
        '  [plugins."io.containerd.internal.v1.opt"]',
        `    path = "${path.join(dir, 'containerd', 'opt')}"`,
        '  [plugins."io.containerd.grpc.v1.cri"]',
        `    sandbox_image = "${this.options.images.pauseImage}"`,
        // Root here cannot lower oom_score_adj: without this every sandbox fails ("can't get final child's PID").
        '    restrict_oom_score_adj = true',
        '    netns_mounts_under_state_dir = true',
        '    [plugins."io.containerd.grpc.v1.cri".containerd]',
        '      snapshotter = "overlayfs"',
        '      default_runtime_name = "runc"',
        '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '        runtime_type = "io.containerd.runc.v2"',
        '        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        '          SystemdCgroup = false',
        `          Root = "${path.join(state, 'runc')}"`,
        '    [plugins."io.containerd.grpc.v1.cri".cni]',
        `      bin_dir = "${CNI_BIN_DIR}"`,
        `      conf_dir = "${cniDir}"`,
        '      max_conf_num = 1',
        '',
      ].join('\n'),
    );

    const client = await issueCertificate(pki, `kubelet-${this.name}`, `/O=system:nodes/CN=system:node:${this.name}`, 'clientAuth');
    const serving = await issueCertificate(pki, `kubelet-${this.name}-serving`, `/CN=${this.name}`, 'serverAuth', [
      `IP:${this.nodeIp}`,
      `DNS:${this.name}`,
    ]);
    await writeKubeconfig(path.join(dir, 'kubelet.kubeconfig'), server, pki.ca.cert, `system:node:${this.name}`, client);
    await fs.writeFile(
      path.join(dir, 'kubelet.yaml'),
      stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        address: this.nodeIp,
        port: this.options.kubeletPort,
        readOnlyPort: 0,
        healthzPort: 0,
        tlsCertFile: serving.cert,
        tlsPrivateKeyFile: serving.key,
        rotateCertificates: false,
        serverTLSBootstrap: false,
        authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: pki.ca.cert } },
        authorization: { mode: 'Webhook' },
        containerRuntimeEndpoint: `unix://${this.containerdSocket}`,
        imageServiceEndpoint: `unix://${this.containerdSocket}`,
        // This host: cgroup v1 (1.36 refuses it unless told), no systemd, no CAP_SYS_RESOURCE, no swap to care about.
        failCgroupV1: false,
        cgroupDriver: 'cgroupfs',
        cgroupRoot: `/${this.cgroupRoot}`,
        cgroupsPerQOS: true,
        oomScoreAdj: 0,
        failSwapOn: false,
        // Without kube-proxy the kubelet's iptables chains serve nothing; they would outlive the node.
        makeIPTablesUtilChains: false,
        podLogsDir: path.join(dir, 'pod-logs'),
        volumePluginDir: path.join(dir, 'kubelet', 'volume-plugins'),
        // The images cannot be pulled again: never collect them. Evict on memory only.
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        evictionHard: { 'memory.available': '100Mi' },
        clusterDomain: 'cluster.local',
        nodeStatusUpdateFrequency: '5s',
        shutdownGracePeriod: '0s',
      }),
    );
  }

  private async startContainerd(record: (key: string, value: string) => Promise<void>): Promise<void> {
    const containerd = spawnManaged({
      name: 'containerd',
      command: 'containerd',
      args: ['--config', path.join(this.options.dir, 'containerd.toml')],
      // Its CNI plugins need iptables (in /usr/sbin).
      env: { PATH: HOST_PATH, HOME: process.env.HOME ?? os.homedir() },
      cwd: this.options.dir,
      logFile: path.join(this.options.logDir, 'containerd.log'),
    });
    this.processes.push(containerd);
    this.options.onProcessGroup(containerd.pid);
    await record('containerd-pid', String(containerd.pid));
    const deadline = Date.now() + 30_000;
    while (!(await canConnect(this.containerdSocket))) {
      if (containerd.exitCode !== undefined) throw new Error('containerd exited at start (see containerd.log)');
      if (Date.now() > deadline) throw new Error(`containerd did not listen on ${this.containerdSocket} within 30 s`);
      await delay(50);
    }
  }
}

// ---- host pieces ---------------------------------------------------------------------------

/** A bridge of the cluster's own, `dpkbr<n>` with 10.245.<n>.1/24, n the first free one. */
async function createBridge(
  record: (key: string, value: string) => Promise<void>,
): Promise<{ bridge: string; subnet: string; gateway: string }> {
  const used = await commandText('ip', ['-4', '-o', 'addr', 'show']);
  const routes = await commandText('ip', ['-4', 'route', 'show', 'table', 'all']);
  for (let n = 0; n < 256; n++) {
    const prefix = `${SUBNET_PREFIX}.${String(n)}.`;
    if (used.includes(` ${prefix}`) || routes.includes(prefix)) continue;
    const bridge = `dpkbr${String(n)}`;
    // Creating the link is what reserves the number: another cluster starting at the same time fails here.
    if ((await runLogged('ip', ['link', 'add', 'name', bridge, 'type', 'bridge'], '/', null, {})) !== 0) continue;
    await record('bridge', bridge);
    const gateway = `${prefix}1`;
    await mustRun('ip', ['addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await mustRun('ip', ['link', 'set', bridge, 'up']);
    return { bridge, subnet: `${prefix}0/24`, gateway };
  }
  throw new Error(`No free subnet ${SUBNET_PREFIX}.<n>.0/24 for the real node's bridge`);
}

/** The kubelet's cgroupRoot, in every hierarchy; cpuset's gets its parent's CPUs and memory nodes. */
async function createCgroupRoot(name: string): Promise<void> {
  for (const mountpoint of await cgroupMountpoints()) {
    const dir = path.join(mountpoint, name);
    await fs.mkdir(dir, { recursive: true });
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const parent = path.join(mountpoint, file);
      if (existsSync(parent)) await fs.writeFile(path.join(dir, file), await fs.readFile(parent, 'utf8'));
    }
  }
}

async function cgroupMountpoints(): Promise<string[]> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const points: string[] = [];
  for (const line of text.split('\n')) {
    const [before, after] = line.split(' - ');
    const fsType = after?.split(' ')[0];
    if (fsType === 'cgroup' || fsType === 'cgroup2') points.push(before.split(' ')[4]);
  }
  return points;
}

async function cgroupV1Controllers(): Promise<Set<string>> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const controllers = new Set<string>();
  for (const line of text.split('\n')) {
    const [, after] = line.split(' - ');
    const fields = after?.split(' ') ?? [];
    if (fields[0] === 'cgroup') for (const option of (fields[2] ?? '').split(',')) controllers.add(option);
  }
  return controllers;
}

async function mustRun(command: string, args: readonly string[]): Promise<void> {
  const code = await runLogged(command, args, '/', null, {});
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed with exit code ${String(code)}`);
}

async function commandText(command: string, args: readonly string[]): Promise<string> {
  return (await promisify(execFile)(command, args)).stdout;
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
