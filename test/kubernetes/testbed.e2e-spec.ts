/**
 * The Kubernetes test cluster itself (test/support/k8s): a real API server enforcing the Role of
 * deploy/kubernetes/rbac.yaml on the provider's ServiceAccount, and pods on kwok's node that behave
 * like containers (command, environment, volumes, exec with TTY and exit codes, processes ended on
 * deletion), plus the failure statuses of the test Stages. Its pods run in a namespace of its own
 * annotated for kwok's node (the cluster's default node is the real one, see real-node.e2e-spec.ts).
 *
 * It runs on the cluster of the `kubernetes` test project when that is the local test cluster
 * (vitest.config.ts leaves it out when KUBECONFIG names a real one).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';

import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1ContainerStatus,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { inject } from 'vitest';

import { eventually } from '../support/eventually.js';
import { createRuntimeNamespace } from '../support/kubernetes-fixtures.js';
import { execInPod, exitCodeOf, FakeTerminal } from '../support/k8s/exec.js';
import { podHostDir, volumeHostDir } from '../support/k8s/pod-inputs.js';
import { pidsWithEnvironmentEntry } from '../support/k8s/pod-processes.js';
import {
  CRASH_LOOP_IMAGE_PREFIX,
  loadKubeConfig,
  POD_MARKER_ENV,
  PULL_ERROR_IMAGE_PREFIX,
  STARTED_ANNOTATION,
  type TestCluster,
} from '../support/k8s/testbed.js';

const HOME = '/home/dev';
const CONFIG_DIR = '/etc/testbed';
const SCRATCH = '/scratch';

let cluster: Pick<TestCluster, 'adminKubeconfig' | 'providerKubeconfig' | 'hostPaths'> & { namespace: string; storageClass: string };
let admin: KubeConfig;
let provider: KubeConfig;
/** The namespace of this suite's pods: on kwok's node, with the provider's Role. */
let ns: string;
let removeNamespace: (() => Promise<void>) | undefined;

beforeAll(async () => {
  // The cluster of the run (test/support/kubernetes-global-setup.ts), when it is the local test cluster.
  const kubernetes = inject('kubernetes');
  const root = kubernetes.hostRoot ?? '';
  cluster = {
    adminKubeconfig: kubernetes.adminKubeconfig,
    providerKubeconfig: kubernetes.providerKubeconfig,
    namespace: kubernetes.namespace,
    storageClass: kubernetes.kwok?.storageClass ?? '',
    hostPaths: { root, volume: (namespace, claimName) => volumeHostDir(root, namespace, claimName), pod: (uid) => podHostDir(root, uid) },
  };
  admin = loadKubeConfig(cluster.adminKubeconfig);
  provider = loadKubeConfig(cluster.providerKubeconfig);
  // The test cluster's own probes, not DevPocket's pods: no Pod Security labels.
  ({ namespace: ns, remove: removeNamespace } = await createRuntimeNamespace(cluster.adminKubeconfig, 'dp-testbed', {
    annotations: kubernetes.kwok?.namespaceAnnotations ?? {},
    podSecurity: false,
  }));
});

afterAll(async () => {
  await removeNamespace?.();
});

async function statusCode(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

function isReady(pod: V1Pod): boolean {
  return (
    pod.status?.phase === 'Running' &&
    pod.status.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') === true
  );
}

async function readPod(name: string): Promise<V1Pod | null> {
  try {
    return await provider.makeApiClient(CoreV1Api).readNamespacedPod({ name, namespace: ns });
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return null;
    throw error;
  }
}

async function containerStatus(name: string): Promise<V1ContainerStatus> {
  const pod = await readPod(name);
  const status = pod?.status?.containerStatuses?.[0];
  if (status === undefined) throw new Error(`pod ${name} has no container status yet`);
  return status;
}

function bareContainerPod(name: string, image: string): V1Pod {
  return {
    metadata: { name },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'main', image, command: ['sleep', '1000'] }] },
  };
}

describe('the provider ServiceAccount', () => {
  it('has the Role of deploy/kubernetes in devpocket-environments and nothing else', async () => {
    const core = provider.makeApiClient(CoreV1Api);
    const environments = cluster.namespace;
    expect(
      await statusCode(
        core.createNamespacedConfigMap({ namespace: environments, body: { metadata: { name: 'rbac-probe' }, data: { a: 'b' } } }),
      ),
    ).toBe(200);
    expect(await statusCode(core.listNamespacedSecret({ namespace: environments }))).toBe(403);
    expect(await statusCode(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'rbac-probe' } } }))).toBe(
      403,
    );
    expect(await statusCode(core.listNode())).toBe(403);
  });
});

describe('a StatefulSet with a PVC, a ConfigMap and an emptyDir', () => {
  const name = 'testbed';
  const podName = `${name}-0`;
  const claimName = `home-${name}-0`;
  let pod: V1Pod;

  beforeAll(async () => {
    await provider.makeApiClient(CoreV1Api).createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: { name: `${name}-config` },
        data: { key: 'value from the ConfigMap\n', 'start.sh': 'echo "started in $PWD" > "$HOME/started"\nexec sleep 1000\n' },
      },
    });
    const statefulSet: V1StatefulSet = {
      metadata: { name },
      spec: {
        replicas: 1,
        serviceName: name,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 5,
            containers: [
              {
                name: 'shell',
                image: 'devpocket-test.invalid/shell:1',
                // A mountPath in the arguments is rewritten like env values.
                command: ['sh', `${CONFIG_DIR}/start.sh`],
                env: [
                  { name: 'HOME', value: HOME },
                  { name: 'CONFIG_DIR', value: CONFIG_DIR },
                  { name: 'SCRATCH', value: SCRATCH },
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'HISTFILE', value: '$(HOME)/.history' },
                ],
                volumeMounts: [
                  { name: 'home', mountPath: HOME },
                  { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
                  { name: 'scratch', mountPath: SCRATCH },
                ],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name: `${name}-config`, defaultMode: 0o755 } },
              { name: 'scratch', emptyDir: {} },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'home' },
            spec: { accessModes: ['ReadWriteOnce'], storageClassName: cluster.storageClass, resources: { requests: { storage: '1Gi' } } },
          },
        ],
      },
    };
    await provider.makeApiClient(AppsV1Api).createNamespacedStatefulSet({ namespace: ns, body: statefulSet });
    pod = await eventually(
      async () => {
        const found = await readPod(podName);
        if (found === null || !isReady(found)) throw new Error(`pod ${podName} not Running/Ready: ${JSON.stringify(found?.status)}`);
        return found;
      },
      60_000,
      200,
    );
  }, 90_000);

  it('is Running only after the emulator started it', () => {
    expect(pod.metadata?.annotations?.[STARTED_ANNOTATION]).toBe('true');
  });

  it('ran the container command with its environment, in the PVC directory', async () => {
    const started = path.join(cluster.hostPaths.volume(ns, claimName), 'started');
    await eventually(async () =>
      expect(await fs.readFile(started, 'utf8')).toBe(`started in ${cluster.hostPaths.volume(ns, claimName)}\n`),
    );
  });

  it('execs with the environment and volumes of the container', async () => {
    const home = cluster.hostPaths.volume(ns, claimName);
    const result = await execInPod(admin, ns, podName, [
      'sh',
      '-c',
      'echo "$HOME"; pwd; cat "$CONFIG_DIR/key"; echo "$SCRATCH $POD_NAME $HISTFILE"',
    ]);
    expect(result.exitCode).toBe(0);
    const scratch = path.join(cluster.hostPaths.pod(pod.metadata!.uid!), 'scratch');
    expect(result.stdout).toBe(`${home}\n${home}\nvalue from the ConfigMap\n${scratch} ${podName} ${home}/.history\n`);
  });

  it('execs in a TTY that follows resizes', async () => {
    const terminal = new FakeTerminal(24, 80);
    const stdin = new PassThrough();
    let output = '';
    terminal.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    // Each input line prints the size (the first size message may arrive after the command started).
    const done = execInPod(admin, ns, podName, ['sh', '-c', 'while read line; do [ "$line" = q ] && exit 0; stty size; done'], {
      tty: true,
      stdin,
      stdout: terminal,
    });
    done.catch(() => undefined);
    const sizeShown = async (size: string): Promise<void> =>
      eventually(
        () => {
          stdin.write('\n');
          expect(output).toContain(size);
        },
        10_000,
        200,
      );
    await sizeShown('24 80');
    terminal.resize(40, 120);
    await sizeShown('40 120');
    stdin.write('q\n');
    expect((await done).exitCode).toBe(0);
  });

  it('reports the exit code of a failed command', async () => {
    const result = await execInPod(admin, ns, podName, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(result).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it("parses both forms of exit status: kwok's message and the kubelet's cause", () => {
    expect(exitCodeOf({ status: 'Failure', message: 'command terminated: cmd wait: sh -c exit 3: exit status 3' })).toBe(3);
    expect(
      exitCodeOf({
        status: 'Failure',
        reason: 'NonZeroExitCode',
        message: 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3',
        details: { causes: [{ reason: 'ExitCode', message: '3' }] },
      }),
    ).toBe(3);
    expect(exitCodeOf({ status: 'Success' })).toBe(0);
  });

  it('stopping (scale to 0) ends every process of the pod and keeps the PVC directory', async () => {
    const uid = pod.metadata!.uid!;
    const marker = `${POD_MARKER_ENV}=${uid}`;
    // A process started by exec that outlives the exec, as a tmux server does.
    await execInPod(admin, ns, podName, ['sh', '-c', 'nohup sleep 1000 >/dev/null 2>&1 &']);
    await eventually(async () => expect((await pidsWithEnvironmentEntry(marker)).length).toBeGreaterThanOrEqual(2));

    await provider
      .makeApiClient(AppsV1Api)
      .patchNamespacedStatefulSet({ name, namespace: ns, body: [{ op: 'replace', path: '/spec/replicas', value: 0 }] });
    await eventually(async () => expect(await readPod(podName)).toBeNull(), 20_000, 100);
    // A kubelet removes the pod only once its containers are gone: so does the emulator.
    expect(await pidsWithEnvironmentEntry(marker)).toEqual([]);
    expect(existsSync(path.join(cluster.hostPaths.volume(ns, claimName), 'started'))).toBe(true);
    expect(existsSync(cluster.hostPaths.pod(uid))).toBe(false);
  });

  it('deleting the PVC removes its directory', async () => {
    const dir = cluster.hostPaths.volume(ns, claimName);
    expect(existsSync(dir)).toBe(true);
    await provider.makeApiClient(CoreV1Api).deleteNamespacedPersistentVolumeClaim({ name: claimName, namespace: ns });
    await eventually(() => expect(existsSync(dir)).toBe(false), 20_000, 100);
  });
});

describe('failures produced by the test Stages', () => {
  it('an image that cannot be pulled: ErrImagePull, then ImagePullBackOff naming the image', async () => {
    const image = `${PULL_ERROR_IMAGE_PREFIX}/missing:1`;
    await admin.makeApiClient(CoreV1Api).createNamespacedPod({ namespace: ns, body: bareContainerPod('pull-error', image) });
    const reasons = new Set<string>();
    await eventually(
      async () => {
        const status = await containerStatus('pull-error');
        const waiting = status.state?.waiting;
        if (waiting?.reason !== undefined) reasons.add(waiting.reason);
        expect(waiting?.reason).toBe('ImagePullBackOff');
        expect(waiting?.message).toContain(image);
      },
      15_000,
      50,
    );
    expect([...reasons]).toContain('ErrImagePull');
    expect((await readPod('pull-error'))?.status?.phase).toBe('Pending');
  });

  it('a container that keeps exiting: CrashLoopBackOff with restarts and exit code 1', async () => {
    await admin
      .makeApiClient(CoreV1Api)
      .createNamespacedPod({ namespace: ns, body: bareContainerPod('crash-loop', `${CRASH_LOOP_IMAGE_PREFIX}:1`) });
    await eventually(
      async () => {
        const status = await containerStatus('crash-loop');
        expect(status.state?.waiting?.reason).toBe('CrashLoopBackOff');
        expect(status.restartCount).toBeGreaterThan(0);
        expect(status.lastState?.terminated?.exitCode).toBe(1);
      },
      15_000,
      100,
    );
  });

  it('requests above the node: Unschedulable', async () => {
    const body = bareContainerPod('too-big', 'devpocket-test.invalid/shell:1');
    body.spec!.containers[0].resources = { requests: { cpu: '64' } };
    await admin.makeApiClient(CoreV1Api).createNamespacedPod({ namespace: ns, body });
    await eventually(
      async () => {
        const condition = (await readPod('too-big'))?.status?.conditions?.find((entry) => entry.type === 'PodScheduled');
        expect(condition).toMatchObject({ status: 'False', reason: 'Unschedulable' });
      },
      15_000,
      100,
    );
  });
});
