/**
 * The test cluster's real node (test/support/k8s/real-node.ts): a kubelet on containerd and runc,
 * with the environment image built on this machine (images/debian) and home volumes from the
 * cluster's provisioner. A StatefulSet shaped like an environment's (src/runtime/kubernetes/manifests.ts:
 * home claim, read-only ConfigMap, emptyDir, non-root user with fsGroup, RuntimeDefault seccomp, every
 * capability dropped, no privilege escalation, CPU and memory limits) runs there, and every one of
 * those fields is checked from inside the container, where the kernel enforces it.
 *
 * Runs on the local test cluster only (skipped when KUBECONFIG names another cluster).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';

import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { inject } from 'vitest';

import { eventually } from '../support/eventually.js';
import { execInPod, FakeTerminal } from '../support/k8s/exec.js';
import { loadKubeConfig } from '../support/k8s/testbed.js';
import { createRuntimeNamespace } from '../support/kubernetes-fixtures.js';

const kubernetes = inject('kubernetes');
const real = kubernetes.realNode;

const NAME = 'smoke';
const POD = `${NAME}-0`;
const CLAIM = `${NAME}-home`;
const HOME = '/home/devpocket';
const CONFIG_DIR = '/etc/devpocket';
const RUN_DIR = '/run/devpocket';
const MEMORY_LIMIT = 128 * 1024 * 1024;
/** The container's command: idles; when the trigger file appears, becomes a process that outgrows the memory limit. */
const START_SCRIPT = [
  "trap 'exit 0' TERM INT",
  'while :; do',
  `  if [ -f ${RUN_DIR}/oom ]; then rm -f ${RUN_DIR}/oom; exec tail /dev/zero; fi`,
  '  sleep 1 & wait $!',
  'done',
  '',
].join('\n');

function isReady(pod: V1Pod | null): boolean {
  return (
    pod?.metadata?.deletionTimestamp === undefined &&
    pod?.status?.phase === 'Running' &&
    pod.status.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true
  );
}

describe.skipIf(real === null)('the real node', () => {
  const node = real!;
  let admin: KubeConfig;
  let provider: KubeConfig;
  let namespace: string;
  let removeNamespace: () => Promise<void>;

  const core = (config: KubeConfig = provider): CoreV1Api => config.makeApiClient(CoreV1Api);
  const readPod = async (name = POD): Promise<V1Pod | null> => {
    try {
      return await core().readNamespacedPod({ name, namespace });
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return null;
      throw error;
    }
  };
  const ready = (): Promise<V1Pod> =>
    eventually(
      async () => {
        const pod = await readPod();
        if (!isReady(pod)) throw new Error(`pod ${POD} is not Ready: ${JSON.stringify(pod?.status)}`);
        return pod!;
      },
      90_000,
      250,
    );
  const scale = async (replicas: number): Promise<void> => {
    await provider
      .makeApiClient(AppsV1Api)
      .patchNamespacedStatefulSet({ name: NAME, namespace, body: [{ op: 'replace', path: '/spec/replicas', value: replicas }] });
    if (replicas === 0) await eventually(async () => expect(await readPod()).toBeNull(), 60_000, 250);
    else await ready();
  };
  /** Runs a shell command in the pod; resolves with its stdout, stderr and exit code. */
  const sh = (script: string): ReturnType<typeof execInPod> => execInPod(provider, namespace, POD, ['sh', '-c', script]);

  beforeAll(async () => {
    admin = loadKubeConfig(kubernetes.adminKubeconfig);
    provider = loadKubeConfig(kubernetes.providerKubeconfig);
    ({ namespace, remove: removeNamespace } = await createRuntimeNamespace(kubernetes.adminKubeconfig, 'dp-real', {
      annotations: node.namespaceAnnotations,
    }));

    // What the runtime creates for an environment, by the provider's ServiceAccount.
    await core().createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: NAME }, data: { 'start.sh': START_SCRIPT, greeting: 'hello from the ConfigMap\n' } },
    });
    const claim: V1PersistentVolumeClaim = {
      metadata: { name: CLAIM },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: node.storageClass, resources: { requests: { storage: '1Gi' } } },
    };
    await core().createNamespacedPersistentVolumeClaim({ namespace, body: claim });
    const statefulSet: V1StatefulSet = {
      metadata: { name: NAME },
      spec: {
        replicas: 1,
        serviceName: NAME,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { app: NAME } },
        template: {
          metadata: { labels: { app: NAME } },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            terminationGracePeriodSeconds: 15,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 1000,
              runAsGroup: 1000,
              fsGroup: 1000,
              fsGroupChangePolicy: 'OnRootMismatch',
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'workspace',
                image: node.images.debian,
                imagePullPolicy: 'IfNotPresent',
                command: ['/bin/sh', `${CONFIG_DIR}/start.sh`],
                workingDir: HOME,
                env: [
                  { name: 'HOME', value: HOME },
                  { name: 'USER', value: 'devpocket' },
                  { name: 'SHELL', value: '/bin/bash' },
                  { name: 'TERM', value: 'xterm-256color' },
                  { name: 'TMUX_TMPDIR', value: RUN_DIR },
                ],
                resources: {
                  limits: { cpu: '500m', memory: String(MEMORY_LIMIT) },
                  requests: { cpu: '125m', memory: String(MEMORY_LIMIT) },
                },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'home', mountPath: HOME },
                  { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                  { name: 'run', mountPath: RUN_DIR },
                ],
              },
            ],
            volumes: [
              { name: 'home', persistentVolumeClaim: { claimName: CLAIM } },
              { name: 'config', configMap: { name: NAME, defaultMode: 0o444 } },
              { name: 'run', emptyDir: { sizeLimit: '64Mi' } },
            ],
          },
        },
      },
    };
    await provider.makeApiClient(AppsV1Api).createNamespacedStatefulSet({ namespace, body: statefulSet });
    await ready();
  });

  afterAll(async () => {
    await removeNamespace?.();
  });

  it('runs the pods of an annotated namespace there, and of a namespace without annotation (the default); kwok-annotated ones on kwok', async () => {
    const pod = (await readPod())!;
    expect(pod.spec?.nodeName).toBe(node.name);
    expect(pod.spec?.nodeSelector).toEqual({ 'testbed.devpocket.io/node-kind': 'real' });
    expect(pod.status?.containerStatuses?.[0].imageID).toMatch(/^(docker\.io\/devpocket\/env-debian@)?sha256:/);

    const placements: [Record<string, string>, string, string][] = [
      [{}, node.name, 'real'],
      [kubernetes.kwok!.namespaceAnnotations, 'kwok-node-0', 'kwok'],
    ];
    for (const [annotations, nodeName, kind] of placements) {
      const other = await createRuntimeNamespace(kubernetes.adminKubeconfig, `dp-${kind}`, { annotations, podSecurity: false });
      try {
        await core(admin).createNamespacedPod({
          namespace: other.namespace,
          body: {
            metadata: { name: 'elsewhere' },
            spec: { containers: [{ name: 'main', image: node.images.debian, command: ['sleep', '1000'] }] },
          },
        });
        await eventually(async () => {
          const placed = await core(admin).readNamespacedPod({ name: 'elsewhere', namespace: other.namespace });
          expect(placed.spec?.nodeName).toBe(nodeName);
          expect(placed.spec?.nodeSelector).toEqual({ 'testbed.devpocket.io/node-kind': kind });
        }, 30_000);
      } finally {
        await other.remove();
      }
    }
  });

  it('runs as uid/gid 1000 with the fsGroup, which owns the home volume (setgid, group-writable)', async () => {
    const result = await sh('id -u; id -g; id -G; stat -c "%u %g %a" "$HOME"; echo written > "$HOME/probe" && cat "$HOME/probe"');
    expect(result.exitCode).toBe(0);
    const [uid, gid, groups, home, written] = result.stdout.trim().split('\n');
    expect(uid).toBe('1000');
    expect(gid).toBe('1000');
    expect(groups.split(' ')).toContain('1000');
    // The volume's directory is root's (made by the provisioner); the kubelet gave it to the fsGroup.
    expect(home).toBe('0 1000 2775');
    expect(written).toBe('written');
  });

  it('mounts the ConfigMap read-only', async () => {
    expect((await sh(`cat ${CONFIG_DIR}/greeting`)).stdout).toBe('hello from the ConfigMap\n');
    const write = await sh(`touch ${CONFIG_DIR}/new 2>&1`);
    expect(write.exitCode).not.toBe(0);
    expect(write.stdout).toContain('Read-only file system');
    const mount = await sh(`awk '$2 == "${CONFIG_DIR}" { print $4 }' /proc/mounts`);
    expect(mount.stdout.split(',')[0]).toBe('ro');
  });

  it('has no capabilities, no privilege escalation and the RuntimeDefault seccomp filter', async () => {
    const status = async (pid: string): Promise<Record<string, string>> => {
      const text = (await sh(`cat /proc/${pid}/status`)).stdout;
      return Object.fromEntries(text.split('\n').map((line) => line.split(/:\s*/, 2) as [string, string]));
    };
    for (const pid of ['1', 'self']) {
      const fields = await status(pid);
      expect(fields.CapEff).toBe('0000000000000000');
      expect(fields.CapPrm).toBe('0000000000000000');
      expect(fields.NoNewPrivs).toBe('1');
      expect(fields.Seccomp).toBe('2');
    }
  });

  it('has its CPU and memory limits in the container cgroup', async () => {
    const result = await sh(
      'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/memory/memory.limit_in_bytes',
    );
    expect(result.stdout.trim().split('\n')).toEqual(['50000', '100000', String(MEMORY_LIMIT)]);
    // Seen from the host too, in the pod's cgroup under the kubelet's cgroupRoot.
    const uid = (await readPod())!.metadata!.uid!;
    const podCgroup = path.join('/sys/fs/cgroup/memory', node.cgroupRoot, 'kubepods', 'burstable', `pod${uid}`);
    const containers = (await fs.readdir(podCgroup, { withFileTypes: true })).filter((entry) => entry.isDirectory());
    const limits = await Promise.all(
      containers.map((entry) => fs.readFile(path.join(podCgroup, entry.name, 'memory.limit_in_bytes'), 'utf8')),
    );
    expect(limits.map((limit) => limit.trim())).toContain(String(MEMORY_LIMIT));
  });

  it('runs tmux new -A in an exec with a TTY, and resizes reach tmux', async () => {
    const terminal = new FakeTerminal(24, 80);
    const stdin = new PassThrough();
    terminal.resume();
    const session = execInPod(provider, namespace, POD, ['tmux', 'new-session', '-A', '-s', 'smoke'], {
      tty: true,
      stdin,
      stdout: terminal,
      timeoutMs: 60_000,
    });
    session.catch(() => undefined);
    const clientSize = async (): Promise<string> =>
      (await sh("tmux list-clients -t smoke -F '#{client_width}x#{client_height}'")).stdout.trim();
    await eventually(async () => expect(await clientSize()).toBe('80x24'), 20_000, 200);
    terminal.resize(40, 120);
    await eventually(async () => expect(await clientSize()).toBe('120x40'), 20_000, 200);
    // Attaching again (-A) finds the same session.
    expect((await sh('tmux list-sessions -F "#{session_name}"')).stdout.trim()).toBe('smoke');
    stdin.write('exit\r');
    expect((await session).exitCode).toBe(0);
  });

  it('OOM-kills a process over the memory limit: the container restarts, its last state OOMKilled', async () => {
    const before = (await readPod())!.status!.containerStatuses![0].restartCount;
    await sh(`touch ${RUN_DIR}/oom`);
    await eventually(
      async () => {
        const status = (await readPod())?.status?.containerStatuses?.[0];
        expect(status?.restartCount).toBeGreaterThan(before);
        expect(status?.lastState?.terminated).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
      },
      60_000,
      250,
    );
    await ready();
  });

  it('keeps the home volume across a stop (scale to 0) and a start, and expands it on request', async () => {
    expect((await sh('echo kept > "$HOME/data"')).exitCode).toBe(0);
    await scale(0);
    const claim = await core().readNamespacedPersistentVolumeClaim({ name: CLAIM, namespace });
    expect(claim.status?.phase).toBe('Bound');
    const volume = claim.spec!.volumeName!;
    expect(await fs.readFile(path.join(node.volumesRoot, volume, 'data'), 'utf8')).toBe('kept\n');

    // allowVolumeExpansion: the provisioner grows the volume and the claim's capacity.
    await core(admin).patchNamespacedPersistentVolumeClaim({
      name: CLAIM,
      namespace,
      body: [{ op: 'replace', path: '/spec/resources/requests/storage', value: '2Gi' }],
    });
    await eventually(
      async () => {
        const grown = await core(admin).readNamespacedPersistentVolumeClaim({ name: CLAIM, namespace });
        expect(grown.status?.capacity?.storage).toBe('2Gi');
        expect((await core(admin).readPersistentVolume({ name: volume })).spec?.capacity?.storage).toBe('2Gi');
      },
      30_000,
      200,
    );

    await scale(1);
    expect((await sh('cat "$HOME/data"')).stdout).toBe('kept\n');
  });

  it('deletes the volume and its data once the claim is deleted', async () => {
    await scale(0);
    const volume = (await core().readNamespacedPersistentVolumeClaim({ name: CLAIM, namespace })).spec!.volumeName!;
    const dir = path.join(node.volumesRoot, volume);
    expect(existsSync(dir)).toBe(true);
    await core().deleteNamespacedPersistentVolumeClaim({ name: CLAIM, namespace });
    await eventually(
      async () => {
        await expect(core(admin).readPersistentVolume({ name: volume })).rejects.toMatchObject({ code: 404 });
        expect(existsSync(dir)).toBe(false);
      },
      60_000,
      250,
    );
  });

  it("serves the kubelet's API only to authenticated, authorized clients", async () => {
    const nodeObject = await core(admin).readNode({ name: node.name });
    const address = nodeObject.status?.addresses?.find((entry) => entry.type === 'InternalIP')?.address;
    const port = nodeObject.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    const ca = await fs.readFile(path.join(path.dirname(kubernetes.adminKubeconfig), 'pki', 'ca.crt'));
    const get = (options: https.RequestOptions): Promise<number> =>
      new Promise((resolve, reject) => {
        https
          .get({ host: address, port, path: '/pods', ca, ...options }, (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          })
          .once('error', reject);
      });
    expect(await get({})).toBe(401);
    const pki = path.join(path.dirname(kubernetes.adminKubeconfig), 'pki');
    expect(await get({ cert: await fs.readFile(path.join(pki, 'admin.crt')), key: await fs.readFile(path.join(pki, 'admin.key')) })).toBe(
      200,
    );
  });
});
