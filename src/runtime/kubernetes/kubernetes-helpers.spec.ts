import { ApiException, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { unitEnvironmentSpec, unitKubernetesConfig } from '../../../test/support/kubernetes-unit.js';
import type { Template } from '../../templates/template.js';
import type { EnvironmentSpec } from '../runtime.provider.js';
import { describeCall, isRetryable, KubernetesApi, KubernetesApiError, reasonOf, requestLabels } from './kubernetes-api.js';
import { parseExitStatus } from './kubernetes-exec.js';
import { configMapFor, environmentFor, labelsFor, namesFor, serviceFor, statefulSetFor, volumeClaimFor } from './manifests.js';
import { viewPod } from './pod-status.js';

const config = unitKubernetesConfig({ storageClass: 'fast' });

/** A Python template on its upstream image, with root system steps. */
function spec(template: Partial<Template> = {}, variables: Record<string, string> = {}): EnvironmentSpec {
  return unitEnvironmentSpec(
    {
      version: '1.0.0',
      image: 'python:3.12-bookworm',
      startup: { system: ['apt-get install -y git'], user: ['echo one', 'echo two'] },
      requiredCommands: ['bash', 'git'],
      runAsNonRoot: false,
      ...template,
    },
    { resources: { cpu: '1', memory: '2Gi', storage: '5Gi' }, environmentVariables: variables },
  );
}

describe('Kubernetes manifests', () => {
  it('names every object after the environment id and labels it for selection', () => {
    expect(namesFor(spec().id)).toEqual({
      workload: 'dp-0123456789abcdef01234567',
      volume: 'dp-0123456789abcdef01234567-home',
      pod: 'dp-0123456789abcdef01234567-0',
    });
    expect(labelsFor(spec())).toMatchObject({
      'app.kubernetes.io/managed-by': 'devpocket-server',
      'app.kubernetes.io/part-of': 'devpocket',
      'devpocket.io/environment-id': '0123456789abcdef01234567',
      'devpocket.io/user-id': 'fedcba9876543210fedcba98',
    });
  });

  it('builds a StatefulSet that never mounts a token, drops privileges and takes limits from the resources', () => {
    const workload = statefulSetFor(spec(), config, 1);
    const pod = workload.spec?.template.spec;
    const container = pod?.containers[0];
    expect(workload.spec?.replicas).toBe(1);
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.securityContext).toMatchObject({
      runAsUser: 0,
      runAsNonRoot: false,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container?.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(container?.resources).toEqual({ limits: { cpu: '1', memory: '2Gi' }, requests: { cpu: '250m', memory: '2Gi' } });
    expect(container?.command).toEqual(['/bin/sh', '/etc/devpocket/entrypoint.sh']);
    expect(pod?.volumes?.map((volume) => volume.name)).toEqual(['home', 'config', 'run']);
    expect(container?.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/devpocket', readOnly: true });

    const nonRoot = statefulSetFor(spec({ runAsNonRoot: true, startup: { system: [], user: [] } }), config, 0);
    expect(nonRoot.spec?.replicas).toBe(0);
    expect(nonRoot.spec?.template.spec?.securityContext).toMatchObject({ runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true });
    expect(nonRoot.spec?.template.spec?.containers[0]?.securityContext?.capabilities?.drop).toEqual(['ALL']);
  });

  it('puts variables into the environment verbatim; DevPocket’s own win', () => {
    const hostile = '$(rm -rf ~); `reboot`';
    const env = environmentFor(spec({}, { MY_VAR: hostile, HOME: '/elsewhere' }));
    expect(env).toContainEqual({ name: 'MY_VAR', value: hostile });
    expect(env).toContainEqual({ name: 'HOME', value: '/home/devpocket' });
    expect(env).toContainEqual({ name: 'DEVPOCKET_WORKDIR', value: '/home/devpocket/workspace' });
  });

  it('ships steps as files, a claim of the requested size, and a Service only for templates with ports', () => {
    const data = configMapFor(spec(), config).data ?? {};
    expect(data['system-1']).toBe('apt-get install -y git\n');
    expect(data['user-2']).toBe('echo two\n');
    expect(data['required-commands']).toBe('bash\ngit\n');
    expect(data.counts).toMatch(/^SYSTEM_STEPS=1\nUSER_STEPS=2\nSPEC_HASH=[0-9a-f]{64}\n$/);
    expect(data['entrypoint.sh']).toContain('never exits on its own');
    expect(volumeClaimFor(spec(), config).spec).toMatchObject({ storageClassName: 'fast', resources: { requests: { storage: '5Gi' } } });
    expect(serviceFor(spec(), config)?.spec?.ports).toEqual([{ name: 'http', port: 8000, targetPort: 8000, protocol: 'TCP' }]);
    expect(serviceFor(spec({ ports: [] }), config)).toBeNull();
  });
});

function pod(status: V1Pod['status'], metadata: V1Pod['metadata'] = {}): V1Pod {
  return { metadata, spec: { containers: [{ name: 'workspace', image: 'example/image:1' }] }, status };
}

describe('viewPod', () => {
  it('tells stopped, pending, running and stopping apart', () => {
    expect(viewPod(null, 0)).toEqual({ state: 'stopped', message: null });
    expect(viewPod(pod({ phase: 'Running' }), 0).state).toBe('pending');
    expect(viewPod(null, 1).state).toBe('pending');
    expect(viewPod(pod({ phase: 'Pending' }), 1).state).toBe('pending');
    expect(
      viewPod(
        pod({
          phase: 'Running',
          containerStatuses: [{ name: 'workspace', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }],
        }),
        1,
      ).state,
    ).toBe('running');
    expect(viewPod(pod({ phase: 'Running' }, { deletionTimestamp: new Date() }), 1).state).toBe('pending');
  });

  it('turns image pull errors, crash loops and unschedulable pods into failures with the reason', () => {
    const waiting = (reason: string, message: string): V1Pod =>
      pod({
        phase: 'Pending',
        containerStatuses: [
          {
            name: 'workspace',
            image: 'example/image:1',
            imageID: '',
            ready: false,
            restartCount: 3,
            state: { waiting: { reason, message } },
            lastState: { terminated: { exitCode: 1, reason: 'Error' } },
          },
        ],
      });
    expect(viewPod(waiting('ImagePullBackOff', 'Back-off pulling image'), 1)).toEqual({
      state: 'failed',
      message: 'ImagePullBackOff: image example/image:1 cannot be pulled: Back-off pulling image',
    });
    expect(viewPod(waiting('CrashLoopBackOff', 'back-off 5m0s'), 1).message).toBe(
      'the container keeps crashing (last exit code 1, Error): back-off 5m0s',
    );
    const unschedulable = pod({
      phase: 'Pending',
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/2 nodes are available: 2 Insufficient cpu.' },
      ],
    });
    expect(viewPod(unschedulable, 1)).toEqual({
      state: 'failed',
      message: 'the pod cannot be scheduled: 0/2 nodes are available: 2 Insufficient cpu.',
    });
    const binding = pod({
      phase: 'Pending',
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'pod has unbound immediate PersistentVolumeClaims' },
      ],
    });
    expect(viewPod(binding, 1).state).toBe('pending');
  });
});

describe('exec exit status', () => {
  it("reads a kubelet's NonZeroExitCode cause, kwok's message, success and signals", () => {
    expect(parseExitStatus('{"metadata":{},"status":"Success"}')).toEqual({ code: 0, signal: null });
    expect(
      parseExitStatus(
        '{"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}',
      ),
    ).toEqual({ code: 7, signal: null });
    expect(parseExitStatus('{"status":"Failure","message":"exit status 3"}')).toEqual({ code: 3, signal: null });
    expect(parseExitStatus('{"status":"Failure","message":"signal: killed"}')).toEqual({ code: null, signal: 'SIGKILL' });
    expect(parseExitStatus('not json')).toEqual({ code: null, signal: null });
  });
});

describe('KubernetesApi', () => {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });

  it('names calls by verb and resource, without object names', () => {
    expect(describeCall('GET', 'https://k/api/v1/namespaces/ns/pods/dp-1-0')).toBe('GET pods');
    expect(describeCall('PATCH', 'https://k/apis/apps/v1/namespaces/ns/statefulsets/dp-1')).toBe('PATCH statefulsets');
    expect(describeCall('POST', 'https://k/api/v1/namespaces/ns/pods/dp-1-0/exec')).toBe('POST pods/exec');
    expect(describeCall('GET', 'https://k/api/v1/namespaces/ns/configmaps?labelSelector=x')).toBe('GET configmaps');
  });

  it('retries 5xx, 429 and connection failures with backoff, then fails with the reason; 4xx at once', async () => {
    const api = new KubernetesApi(config, kubeConfig, { baseDelayMs: 1, maxDelayMs: 2 });
    let calls = 0;
    const flaky = (): Promise<string> => {
      calls += 1;
      return calls < 3 ? Promise.reject(new ApiException(503, 'unavailable', '{"message":"etcd is down"}', {})) : Promise.resolve('ok');
    };
    await expect(api.call('read x', flaky)).resolves.toBe('ok');
    expect(calls).toBe(3);

    calls = 0;
    const down = (): Promise<string> => {
      calls += 1;
      return Promise.reject(new ApiException(503, 'unavailable', '{"message":"etcd is down"}', {}));
    };
    const failure = await api.call('create StatefulSet dp-1', down).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(KubernetesApiError);
    expect((failure as Error).message).toBe('Kubernetes API: create StatefulSet dp-1 failed after 4 attempt(s): etcd is down (HTTP 503)');
    expect(calls).toBe(4);

    calls = 0;
    const forbidden = (): Promise<string> => {
      calls += 1;
      return Promise.reject(new ApiException(403, 'forbidden', '{}', {}));
    };
    await expect(api.call('list secrets', forbidden)).rejects.toBeInstanceOf(ApiException);
    expect(calls).toBe(1);
    await expect(api.find('read pod', () => Promise.reject(new ApiException(404, 'nf', '{}', {})))).resolves.toBeNull();
    await expect(api.ensure('create pod', () => Promise.reject(new ApiException(409, 'exists', '{}', {})))).resolves.toBe('existed');
    expect(isRetryable(new ApiException(429, '', '', {}))).toBe(true);
    expect(isRetryable(new Error('socket hang up'))).toBe(true);
    expect(reasonOf(Object.assign(new Error('x'), { name: 'AbortError' }))).toBe('the request timed out');
  });
});

describe('requestLabels (kubernetes_api_requests_total)', () => {
  const server = 'https://10.0.0.1:6443';
  it.each([
    ['GET', '/api/v1/namespaces/envs/pods?labelSelector=a%3Db', 'list', 'pods'],
    ['GET', '/api/v1/pods?labelSelector=a&watch=true', 'watch', 'pods'],
    ['GET', '/api/v1/namespaces/envs/pods/dp-x-0', 'get', 'pods'],
    ['POST', '/api/v1/namespaces/envs/configmaps', 'create', 'configmaps'],
    ['PATCH', '/apis/apps/v1/namespaces/envs/statefulsets/dp-x', 'patch', 'apps/statefulsets'],
    ['DELETE', '/api/v1/namespaces/envs/persistentvolumeclaims/dp-x-home', 'delete', 'persistentvolumeclaims'],
    ['GET', '/apis/metrics.k8s.io/v1beta1/namespaces/envs/pods/dp-x-0', 'get', 'metrics.k8s.io/pods'],
    ['POST', '/api/v1/namespaces', 'create', 'namespaces'],
    ['GET', '/api/v1/namespaces/envs', 'get', 'namespaces'],
    ['GET', '/version', 'get', '/version'],
    ['GET', '/apis', 'get', '/apis'],
  ])('%s %s is %s %s', (method, path, verb, resource) => {
    expect(requestLabels(method, `${server}${path}`)).toEqual({ verb, resource });
  });
});
