import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { unitEnvironmentSpec, unitKubernetesConfig } from '../../../test/support/kubernetes-unit.js';
import type { Template } from '../../templates/template.js';
import type { EnvironmentSpec } from '../runtime.provider.js';
import { environmentImage } from './environment-image.js';
import { namespaceFor, statefulSetFor } from './manifests.js';
import { memoryLimitOf, oomKillsInside, outOfMemoryNote } from './out-of-memory.js';
import { podSecurityLabels, podSecurityRefusal, POD_SECURITY_VERSION } from './pod-security.js';
import { parseKeyValues } from './pod-scripts.js';

const config = unitKubernetesConfig();
const spec = (template: Partial<Template> = {}): EnvironmentSpec => unitEnvironmentSpec(template);

const ROOT_TEMPLATE: Partial<Template> = {
  image: 'example.com/tools/python:3.12',
  startup: { system: ['apt-get install -y tmux'], user: [] },
  runAsNonRoot: false,
};

/**
 * What the Pod Security Standards' `restricted` level (Kubernetes v1.36) checks in a pod spec, as
 * the API server's admission does; one line per violation.
 */
function restrictedViolations(pod: V1PodSpec): string[] {
  const problems: string[] = [];
  const allowedVolumes = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) problems.push('host namespaces');
  for (const volume of pod.volumes ?? []) {
    const kinds = Object.keys(volume).filter((key) => key !== 'name');
    if (kinds.some((kind) => !allowedVolumes.includes(kind))) problems.push(`volume ${volume.name}: ${kinds.join(',')}`);
  }
  const podContext = pod.securityContext ?? {};
  if (podContext.runAsUser === 0) problems.push('pod runAsUser 0');
  if ((podContext.sysctls ?? []).length > 0) problems.push('sysctls');
  for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const context = container.securityContext ?? {};
    if (context.privileged) problems.push(`${container.name}: privileged`);
    if (context.allowPrivilegeEscalation !== false) problems.push(`${container.name}: allowPrivilegeEscalation must be false`);
    if (!(context.capabilities?.drop ?? []).includes('ALL')) problems.push(`${container.name}: capabilities must drop ALL`);
    if ((context.capabilities?.add ?? []).some((capability) => capability !== 'NET_BIND_SERVICE'))
      problems.push(`${container.name}: adds capabilities`);
    if ((context.runAsNonRoot ?? podContext.runAsNonRoot) !== true) problems.push(`${container.name}: runAsNonRoot must be true`);
    if ((context.runAsUser ?? podContext.runAsUser) === 0) problems.push(`${container.name}: runAsUser 0`);
    const seccomp = context.seccompProfile?.type ?? podContext.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost')
      problems.push(`${container.name}: seccompProfile RuntimeDefault or Localhost`);
    if ((container.ports ?? []).some((port) => port.hostPort !== undefined)) problems.push(`${container.name}: hostPort`);
  }
  return problems;
}

describe('Pod Security', () => {
  it("labels namespaces with the installation's level, enforced at a pinned version, audited and warned against the latest", () => {
    expect(POD_SECURITY_VERSION).toBe('v1.36');
    expect(podSecurityLabels('restricted')).toEqual({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'v1.36',
      'pod-security.kubernetes.io/audit': 'restricted',
      'pod-security.kubernetes.io/audit-version': 'latest',
      'pod-security.kubernetes.io/warn': 'restricted',
      'pod-security.kubernetes.io/warn-version': 'latest',
    });
    const namespace = namespaceFor(spec(), 'dp-user', 'baseline');
    expect(namespace.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'devpocket-server',
      'devpocket.io/user-id': 'fedcba9876543210fedcba98',
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/enforce-version': 'v1.36',
    });
  });

  it('builds pods that pass restricted for templates that run as their user; root templates do not', () => {
    const pod = statefulSetFor(spec(), config, 1).spec!.template.spec!;
    expect(restrictedViolations(pod)).toEqual([]);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 });
    const root = statefulSetFor(spec(ROOT_TEMPLATE), config, 1).spec!.template.spec!;
    expect(restrictedViolations(root)).toEqual(
      expect.arrayContaining(['workspace: capabilities must drop ALL', 'workspace: runAsNonRoot must be true', 'pod runAsUser 0']),
    );
  });

  it('refuses a root template where the level is restricted, and only there', () => {
    expect(podSecurityRefusal(spec().template, 'restricted')).toBeNull();
    expect(podSecurityRefusal(spec(ROOT_TEMPLATE).template, 'restricted')).toBe(
      'template "python" runs as root in its container (run_as_non_root: false), which this installation does not allow: its environment namespaces enforce the Pod Security level "restricted" (KUBERNETES_POD_SECURITY_LEVEL)',
    );
    // A uid of 0 runs as root whatever run_as_non_root says.
    expect(podSecurityRefusal(spec({ user: { name: 'root', uid: 0, gid: 0, home: '/root' } }).template, 'restricted')).not.toBeNull();
    expect(podSecurityRefusal(spec(ROOT_TEMPLATE).template, 'baseline')).toBeNull();
  });
});

describe('the environment image', () => {
  it("puts DevPocket's own images under the configured registry, and leaves every other image alone", () => {
    expect(environmentImage('devpocket/env-python:1', null)).toBe('devpocket/env-python:1');
    expect(environmentImage('devpocket/env-python:1', 'registry.example.com/devpocket')).toBe(
      'registry.example.com/devpocket/env-python:1',
    );
    expect(environmentImage('devpocket/env-coding-agent:2@sha256:' + 'a'.repeat(64), 'localhost:5000/dp')).toBe(
      `localhost:5000/dp/env-coding-agent:2@sha256:${'a'.repeat(64)}`,
    );
    for (const image of [
      'python:3.12-bookworm',
      'docker.io/devpocket/env-python:1',
      'ghcr.io/x/devpocket/env-python:1',
      'devpocket/server:1',
    ]) {
      expect(environmentImage(image, 'registry.example.com/devpocket')).toBe(image);
    }
    const workload = statefulSetFor(spec(), { ...config, imageRegistry: 'registry.example.com/devpocket' }, 1);
    expect(workload.spec?.template.spec?.containers[0]?.image).toBe('registry.example.com/devpocket/env-python:1');
  });
});

describe('out of memory', () => {
  const facts = (text: string): Map<string, string> => parseKeyValues(text);
  const pod = (lastReason?: string): V1Pod => ({
    spec: { containers: [{ name: 'workspace', image: 'x', resources: { limits: { memory: '256Mi', cpu: '1' } } }] },
    status: {
      containerStatuses: [
        {
          name: 'workspace',
          image: 'x',
          imageID: '',
          ready: true,
          restartCount: lastReason ? 1 : 0,
          state: { running: {} },
          ...(lastReason ? { lastState: { terminated: { exitCode: 137, reason: lastReason } } } : {}),
        },
      ],
    },
  });

  it("counts the kills of the container's own memory cgroup, never the node's", () => {
    // cgroup v2: memory.events exists only below the root.
    expect(oomKillsInside(facts('cgroupns=cgroup:[4026532571]\nv2.oom_kill=2\n'))).toBe(2);
    // cgroup v1, the container's hierarchy bind-mounted by runc (the test cluster's real node).
    expect(
      oomKillsInside(facts('cgroupns=cgroup:[4026531835]\nv1.memory_root=/devpocket-1/kubepods/burstable/pod1/abc\nv1.oom_kill=1\n')),
    ).toBe(1);
    // cgroup v1, the root seen through a cgroup namespace of its own.
    expect(oomKillsInside(facts('cgroupns=cgroup:[4026532571]\nv1.memory_root=/\nv1.oom_kill=0\n'))).toBe(0);
    // The host's root (kwok's node, whose pods are host processes): never.
    expect(oomKillsInside(facts('cgroupns=cgroup:[4026531835]\nv1.memory_root=/\nv1.oom_kill=7\n'))).toBeNull();
    expect(oomKillsInside(facts('missing=\n'))).toBeNull();
  });

  it('says what was killed, with the limit', () => {
    expect(memoryLimitOf(pod())).toBe('256Mi');
    expect(outOfMemoryNote(pod(), 0)).toBeNull();
    expect(outOfMemoryNote(pod(), null)).toBeNull();
    expect(outOfMemoryNote(pod(), 1)).toBe('a process was killed: out of memory (limit 256Mi)');
    expect(outOfMemoryNote(pod(), 3)).toBe('3 processes were killed: out of memory (limit 256Mi)');
    expect(outOfMemoryNote(pod('OOMKilled'), null)).toBe('the container was killed and restarted: out of memory (limit 256Mi)');
    expect(outOfMemoryNote(pod('Error'), null)).toBeNull();
    expect(outOfMemoryNote(null, 1)).toBe('a process was killed: out of memory');
  });
});
