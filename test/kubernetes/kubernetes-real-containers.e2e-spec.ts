/**
 * Environments of the Kubernetes runtime as real containers: provisioned by KubernetesRuntime (not a
 * hand-made StatefulSet) in a namespace with the Pod Security labels of deploy/kubernetes, on the
 * test cluster's real node (kubelet, containerd, runc), from DevPocket's image of the debian
 * template. What the pod spec asks for is checked from inside the container, where the kernel
 * enforces it: the user, group and fsGroup, the read-only ConfigMap, no capabilities, seccomp, the
 * CPU and memory limits in the container's cgroup; a process over the memory limit is OOM-killed and
 * the environment says so (runtime status, then status_message through the API); the home volume
 * outlives a stop and goes with a delete.
 *
 * Runs on the local test cluster with its real node (skipped otherwise).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import { definitionOf } from '../../src/templates/template-file.js';
import { TemplatesService } from '../../src/templates/templates.service.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { runToEnd } from '../runtime/runtime-contract.js';
import type { TestAccount } from '../support/accounts.js';
import { createEnvironmentsApp, type EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import { kubernetesConfig, kubernetesSpec } from '../support/kubernetes.js';
import { createTestNamespace } from '../support/runtime-under-test.js';
import { TerminalTestClient } from '../support/terminal-client.js';

const kubernetes = inject('kubernetes');
const real = kubernetes.realNode;

const MEMORY = '256Mi';
const MEMORY_BYTES = 256 * 1024 * 1024;
/** The message of a process killed for memory (src/runtime/kubernetes/out-of-memory.ts). */
const KILLED_FOR_MEMORY = `a process was killed: out of memory (limit ${MEMORY})`;

/** Reads the container's own cgroup, v1 (the test cluster's node) or v2: `<quota> <period>`, the memory limit, throttled periods. */
const CGROUP_LIMITS = [
  'if [ -r /sys/fs/cgroup/cpu.max ]; then',
  '  cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max',
  '  awk \'$1 == "nr_throttled" { print $2 }\' /sys/fs/cgroup/cpu.stat',
  'else',
  '  echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"',
  '  cat /sys/fs/cgroup/memory/memory.limit_in_bytes',
  '  awk \'$1 == "nr_throttled" { print $2 }\' /sys/fs/cgroup/cpu/cpu.stat',
  'fi',
].join('\n');

describe.skipIf(real === null)('environments as real containers (the Kubernetes runtime on a real node)', () => {
  const admin = new KubeConfig();
  admin.loadFromFile(kubernetes.adminKubeconfig);
  const core = admin.makeApiClient(CoreV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let runtime: KubernetesRuntime;
  let spec: EnvironmentSpec;

  const sh = async (script: string): Promise<{ text: string; code: number | null }> => {
    const output = await runToEnd(runtime, spec, ['sh', '-c', script]);
    return { text: output.text, code: output.exit.code };
  };
  const running = (): Promise<unknown> => eventually(async () => expect((await runtime.status(spec)).state).toBe('running'), 90_000, 200);

  beforeAll(async () => {
    ({ namespace, remove: removeNamespace } = await createTestNamespace('dp-real-containers'));
    runtime = new KubernetesRuntime(kubernetesConfig(namespace));
    spec = { ...kubernetesSpec(), resources: { cpu: '500m', memory: MEMORY, storage: '1Gi' } };
    await runtime.provision(spec);
    await running();
  }, 120_000);

  afterAll(async () => {
    await runtime?.destroy(spec).catch(() => undefined);
    await runtime?.onApplicationShutdown();
    await removeNamespace?.();
  }, 120_000);

  it('runs on the real node, from the template image, in a namespace enforcing Pod Security restricted', async () => {
    const pod = await core.readNamespacedPod({ name: `dp-${spec.id}-0`, namespace });
    expect(pod.spec?.nodeName).toBe(real!.name);
    expect(pod.spec?.containers[0]?.image).toBe('devpocket/env-debian:1');
    expect(pod.status?.containerStatuses?.[0]?.imageID).toMatch(/sha256:/);
    expect((await core.readNamespace({ name: namespace })).metadata?.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
  });

  it('runs as the template user, with the fsGroup owning the home volume', async () => {
    const result = await sh('id -u; id -g; id -G; stat -c "%g" "$HOME"; echo written > "$HOME/probe" && cat "$HOME/probe"');
    expect(result.code).toBe(0);
    const [uid, gid, groups, homeGroup, written] = result.text.trim().split('\n');
    expect(uid).toBe('1000');
    expect(gid).toBe('1000');
    expect(groups?.split(' ')).toContain('1000');
    expect(homeGroup).toBe('1000');
    expect(written).toBe('written');
    // The entrypoint (PID 1) and the tmux server run as the user too: nothing runs as root.
    expect((await sh('ps -eo user= | sort -u')).text.trim()).toBe('devpocket');
  });

  it('mounts its ConfigMap read-only', async () => {
    expect((await sh('head -n 2 /etc/devpocket/entrypoint.sh')).text).toContain('DevPocket environment entrypoint');
    const write = await sh('touch /etc/devpocket/new 2>&1');
    expect(write.code).not.toBe(0);
    expect(write.text).toContain('Read-only file system');
    expect((await sh('awk \'$2 == "/etc/devpocket" { print $4 }\' /proc/mounts')).text.split(',')[0]).toBe('ro');
  });

  it('has no capabilities, no privilege escalation, and the RuntimeDefault seccomp filter', async () => {
    for (const pid of ['1', 'self']) {
      const text = (await sh(`cat /proc/${pid}/status`)).text;
      const fields = Object.fromEntries(text.split('\n').map((line) => line.split(/:\s*/, 2) as [string, string]));
      expect(fields.CapEff).toBe('0000000000000000');
      expect(fields.CapPrm).toBe('0000000000000000');
      expect(fields.CapBnd).toBe('0000000000000000');
      expect(fields.NoNewPrivs).toBe('1');
      expect(fields.Seccomp).toBe('2');
    }
  });

  it('has its CPU limit in the cgroup, which throttles a busy process', async () => {
    const before = (await sh(CGROUP_LIMITS)).text.trim().split('\n');
    expect(before.slice(0, 2)).toEqual(['50000 100000', String(MEMORY_BYTES)]);
    // Two busy loops would take two cores: the quota holds them to half of one. (Closing an exec
    // ends no process in a real container: they end by themselves, or at the finally below.)
    const loop = "timeout 30 sh -c 'while :; do :; done' busy-loop";
    const busy = await runtime.exec(spec, ['sh', '-c', `${loop} & ${loop}; wait`], { tty: false });
    busy.stream.resume();
    try {
      await eventually(
        async () => expect(Number((await sh(CGROUP_LIMITS)).text.trim().split('\n')[2])).toBeGreaterThan(Number(before[2]) + 5),
        20_000,
        500,
      );
      await runtime.metrics(spec);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const cores = (await runtime.metrics(spec)).cpuCores;
      expect(cores).toBeGreaterThan(0);
      expect(cores).toBeLessThan(0.65);
    } finally {
      await sh("pkill -f 'busy[-]loop'");
      await busy.kill();
    }
  });

  it('kills a process over the memory limit, and the environment says so; the environment lives on', async () => {
    expect((await runtime.status(spec)).message).toBeNull();
    const hog = await runToEnd(runtime, spec, ['tail', '/dev/zero']);
    expect(hog.exit.code === 137 || hog.exit.signal === 'SIGKILL').toBe(true);
    const status = await runtime.status(spec);
    expect(status.state).toBe('running');
    expect(status.message).toBe(KILLED_FOR_MEMORY);
    // Only the process: the container, its entrypoint and the tmux session are still there.
    const pod = await core.readNamespacedPod({ name: `dp-${spec.id}-0`, namespace });
    expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    expect((await runToEnd(runtime, spec, ['tmux', 'has-session', '-t', `=devpocket_${spec.id}`])).exit.code).toBe(0);
  });

  it('keeps the home volume across stop and start (a new container, whose kill count starts again), and removes it on delete', async () => {
    expect((await sh('echo kept > "$HOME/kept.txt"')).code).toBe(0);
    await runtime.stop(spec);
    expect((await runtime.status(spec)).state).toBe('stopped');
    await runtime.start(spec);
    await running();
    expect((await runToEnd(runtime, spec, ['cat', 'kept.txt'])).text).toBe('kept\n');
    expect((await runtime.status(spec)).message).toBeNull();

    const claim = await core.readNamespacedPersistentVolumeClaim({ name: `dp-${spec.id}-home`, namespace });
    expect(claim.spec?.storageClassName).toBe(real!.storageClass);
    const volume = claim.spec!.volumeName!;
    const dir = path.join(real!.volumesRoot, volume);
    expect(existsSync(path.join(dir, 'kept.txt'))).toBe(true);
    await runtime.destroy(spec);
    expect((await runtime.status(spec)).state).toBe('absent');
    await eventually(
      async () => {
        await expect(core.readPersistentVolume({ name: volume })).rejects.toBeInstanceOf(ApiException);
        expect(existsSync(dir)).toBe(false);
      },
      60_000,
      250,
    );
  });

  describe('through the API', () => {
    let app: EnvironmentsApp;
    let owner: TestAccount & { id: string };

    beforeAll(async () => {
      app = await createEnvironmentsApp();
      owner = await app.account('pro');
    }, 120_000);

    afterAll(async () => {
      await app?.close();
    }, 120_000);

    it("shows a process killed for memory in the environment's status_message", async () => {
      const env = await app.createRunning(owner, {
        name: 'Memory hog',
        template: 'debian',
        resources: { cpu: '500m', memory: MEMORY, storage: '1Gi' },
      });
      const terminal = await TerminalTestClient.connect(app.baseUrl, env.id, { token: owner.tokens.access_token });
      try {
        await terminal.waitForFrame((frame) => frame.type === 'welcome');
        terminal.run('tail /dev/zero; echo "hog-ended-$((6*7))"');
        await terminal.waitForScreen(/hog-ended-42/, 30_000);
      } finally {
        await terminal.close();
      }
      // Nothing in the pod changed: the reconciler's pass asks the runtime, as it does every minute.
      await app.reconciler.reconcile();
      const body = await app.get(owner, env.id);
      expect(body).toMatchObject({ phase: 'running', status_message: KILLED_FOR_MEMORY });
      expect((await app.json('DELETE', `/api/v1/environments/${env.id}`, { token: owner.tokens.access_token })).status).toBe(200);
      await app.waitForPhase(owner, env.id, 'terminated');
    }, 180_000);

    it('refuses to create an environment from a root template where the namespaces enforce restricted (422)', async () => {
      const templates = app.app.get(TemplatesService);
      const debian = await templates.findForNewEnvironment('debian');
      await templates.create({
        ...definitionOf(debian),
        name: 'root-tools',
        image: 'example.com/tools/debian:12',
        runAsNonRoot: false,
        startup: { system: ['apt-get install -y ripgrep'], user: [] },
      });
      const refused = await app.json<{ code: string; detail: string; errors: { field: string; code: string }[] }>(
        'POST',
        '/api/v1/environments',
        { token: owner.tokens.access_token, body: { name: 'As root', template: 'root-tools' } },
      );
      expect(refused.status).toBe(422);
      expect(refused.body).toMatchObject({ code: 'validation_failed', errors: [{ field: 'template', code: 'template_not_allowed' }] });
      expect(refused.body.detail).toMatch(/^template "root-tools" runs as root in its container \(run_as_non_root: false\)/);
    });
  });
});
