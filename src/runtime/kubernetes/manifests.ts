import type { V1ConfigMap, V1EnvVar, V1Namespace, V1PersistentVolumeClaim, V1Service, V1StatefulSet } from '@kubernetes/client-node';
import type { PodSecurityLevel } from '../../config/environment.schema.js';
import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';
import { cpuMillicores } from '../../templates/template-rules.js';
import { specHash } from '../installation.js';
import type { EnvironmentSpec } from '../runtime.provider.js';
import { TMUX_CONF } from '../tmux-conf.js';
import { tmuxSessionName } from '../tmux-session.js';
import { environmentImage } from './environment-image.js';
import { CONFIG_MOUNT_PATH, ENTRYPOINT_SCRIPT, RUN_MOUNT_PATH } from './pod-scripts.js';
import { podSecurityLabels } from './pod-security.js';

/**
 * The Kubernetes objects of one environment (see docs/kubernetes.md). Pure functions of the
 * environment's spec and the runtime's configuration, so they are unit-tested and the same on
 * every API server replica. Every object is named `dp-<environment id>` (the home volume
 * `dp-<id>-home`, the pod `dp-<id>-0`) and labelled so the runtime can find what it owns.
 */

export const CONTAINER_NAME = 'workspace';
export const MANAGED_BY = 'devpocket-server';
export const LABEL_ENVIRONMENT_ID = 'devpocket.io/environment-id';
export const LABEL_USER_ID = 'devpocket.io/user-id';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** Selects every object of every environment this runtime manages. */
export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
/** On the StatefulSet: the installation progress, saved at each stop (the pod, and its view, are gone then). */
export const ANNOTATION_INSTALLATION = 'devpocket.io/installation';
/** On the ConfigMap and the pod template: the hash of what a provision installs. */
export const ANNOTATION_SPEC_HASH = 'devpocket.io/spec-hash';

export interface EnvironmentNames {
  /** StatefulSet, ConfigMap and Service. */
  workload: string;
  volume: string;
  pod: string;
}

export function namesFor(id: string): EnvironmentNames {
  return { workload: `dp-${id}`, volume: `dp-${id}-home`, pod: `dp-${id}-0` };
}

/** A label value (at most 63 of [A-Za-z0-9-_.], starting and ending alphanumeric), or a safe stand-in. */
function labelValue(value: string): string {
  const cleaned = value
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return cleaned === '' ? 'unknown' : cleaned;
}

/** KUBERNETES_NAMESPACE_MODE=per-user: the namespace of a user's environments. */
export function userNamespace(prefix: string, userId: string): string {
  return `${prefix}-${userId}`;
}

/** A per-user namespace: labelled as DevPocket's and the user's, with the installation's Pod Security level (pod-security.ts). */
export function namespaceFor(spec: EnvironmentSpec, name: string, podSecurity: PodSecurityLevel): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      labels: {
        'app.kubernetes.io/part-of': 'devpocket',
        [LABEL_MANAGED_BY]: MANAGED_BY,
        [LABEL_USER_ID]: labelValue(spec.userId),
        ...podSecurityLabels(podSecurity),
      },
    },
  };
}

export function labelsFor(spec: EnvironmentSpec): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'devpocket-environment',
    'app.kubernetes.io/instance': namesFor(spec.id).workload,
    'app.kubernetes.io/component': 'environment',
    'app.kubernetes.io/part-of': 'devpocket',
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_ENVIRONMENT_ID]: spec.id,
    [LABEL_USER_ID]: labelValue(spec.userId),
    'devpocket.io/template': labelValue(spec.template.name),
  };
}

function metadata(spec: EnvironmentSpec, name: string, namespace: string, annotations: Record<string, string> = {}) {
  return {
    name,
    namespace,
    labels: labelsFor(spec),
    annotations: { 'devpocket.io/slug': spec.slug, ...annotations },
  };
}

/** The home directory's working directory for new shells (the template's, under HOME). */
function workdir(spec: EnvironmentSpec): string {
  const home = spec.template.user.home.replace(/\/+$/, '');
  const relative = spec.template.workingDirectory.replace(/^\/+|\/+$/g, '');
  return relative === '' ? home : `${home}/${relative}`;
}

/** `SYSTEM_STEPS=…` lines sourced by the entrypoint: numbers and a hex hash only, never user text. */
function counts(spec: EnvironmentSpec): string {
  return [
    `SYSTEM_STEPS=${spec.template.startup.system.length}`,
    `USER_STEPS=${spec.template.startup.user.length}`,
    `SPEC_HASH=${specHash(spec)}`,
    '',
  ].join('\n');
}

export function configMapFor(spec: EnvironmentSpec, config: KubernetesConfig, namespace = config.namespace): V1ConfigMap {
  const data: Record<string, string> = {
    'entrypoint.sh': ENTRYPOINT_SCRIPT,
    'tmux.conf': TMUX_CONF,
    counts: counts(spec),
    'required-commands': spec.template.requiredCommands.map((command) => `${command}\n`).join(''),
  };
  spec.template.startup.system.forEach((step, index) => (data[`system-${index + 1}`] = `${step}\n`));
  spec.template.startup.user.forEach((step, index) => (data[`user-${index + 1}`] = `${step}\n`));
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(spec, namesFor(spec.id).workload, namespace, { [ANNOTATION_SPEC_HASH]: specHash(spec) }),
    data,
  };
}

export function volumeClaimFor(spec: EnvironmentSpec, config: KubernetesConfig, namespace = config.namespace): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: metadata(spec, namesFor(spec.id).volume, namespace),
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: spec.resources.storage } },
      ...(config.storageClass ? { storageClassName: config.storageClass } : {}),
    },
  };
}

/** A ClusterIP Service for the template's ports; null when the template has none. */
export function serviceFor(spec: EnvironmentSpec, config: KubernetesConfig, namespace = config.namespace): V1Service | null {
  if (spec.template.ports.length === 0) return null;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(spec, namesFor(spec.id).workload, namespace),
    spec: {
      type: 'ClusterIP',
      selector: { [LABEL_ENVIRONMENT_ID]: spec.id },
      ports: spec.template.ports.map((port) => ({ name: port.name, port: port.port, targetPort: port.port, protocol: port.protocol })),
    },
  };
}

/** The container's environment: the environment's variables, then DevPocket's own (which win). */
export function environmentFor(spec: EnvironmentSpec): V1EnvVar[] {
  const { user } = spec.template;
  const own: Record<string, string> = {
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: spec.template.shell,
    TERM: 'xterm-256color',
    TMUX_TMPDIR: RUN_MOUNT_PATH,
    DEVPOCKET_ENVIRONMENT_ID: spec.id,
    DEVPOCKET_TEMPLATE: spec.template.name,
    DEVPOCKET_CONFIG_DIR: CONFIG_MOUNT_PATH,
    DEVPOCKET_WORKDIR: workdir(spec),
    DEVPOCKET_USER_UID: String(user.uid),
    DEVPOCKET_USER_GID: String(user.gid),
  };
  const merged = { ...spec.environmentVariables, ...own };
  return Object.entries(merged).map(([name, value]) => ({ name, value }));
}

/** CPU request: a quarter of the limit (at least 10m), so idle environments do not hold whole cores. */
function cpuRequest(limit: string): string {
  const millicores = cpuMillicores(limit);
  return millicores === null ? limit : `${Math.max(10, Math.floor(millicores / 4))}m`;
}

export function statefulSetFor(
  spec: EnvironmentSpec,
  config: KubernetesConfig,
  replicas: 0 | 1,
  namespace = config.namespace,
): V1StatefulSet {
  const names = namesFor(spec.id);
  const { template, resources } = spec;
  const nonRoot = template.runAsNonRoot && template.user.uid !== 0;
  const labels = labelsFor(spec);
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: metadata(spec, names.workload, namespace),
    spec: {
      replicas,
      serviceName: names.workload,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: { [LABEL_ENVIRONMENT_ID]: spec.id } },
      template: {
        metadata: { labels, annotations: { [ANNOTATION_SPEC_HASH]: specHash(spec), 'devpocket.io/session': tmuxSessionName(spec.id) } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 15,
          securityContext: {
            runAsNonRoot: nonRoot,
            runAsUser: nonRoot ? template.user.uid : 0,
            runAsGroup: nonRoot ? template.user.gid : 0,
            // The home volume belongs to the environment's group, so its user can write it even in root containers.
            fsGroup: template.user.gid,
            fsGroupChangePolicy: 'OnRootMismatch',
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: CONTAINER_NAME,
              image: environmentImage(template.image, config.imageRegistry),
              imagePullPolicy: config.imagePullPolicy,
              command: ['/bin/sh', `${CONFIG_MOUNT_PATH}/entrypoint.sh`],
              workingDir: template.user.home,
              env: environmentFor(spec),
              resources: {
                limits: { cpu: resources.cpu, memory: resources.memory },
                requests: { cpu: cpuRequest(resources.cpu), memory: resources.memory },
              },
              securityContext: nonRoot
                ? { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }
                : { allowPrivilegeEscalation: false, capabilities: { drop: ['NET_RAW'] } },
              ports: template.ports.map((port) => ({ name: port.name, containerPort: port.port, protocol: port.protocol })),
              volumeMounts: [
                { name: 'home', mountPath: template.user.home },
                { name: 'config', mountPath: CONFIG_MOUNT_PATH, readOnly: true },
                { name: 'run', mountPath: RUN_MOUNT_PATH },
              ],
              stdin: false,
              tty: false,
            },
          ],
          volumes: [
            { name: 'home', persistentVolumeClaim: { claimName: names.volume } },
            { name: 'config', configMap: { name: names.workload, defaultMode: 0o444 } },
            { name: 'run', emptyDir: { sizeLimit: '64Mi' } },
          ],
        },
      },
    },
  };
}
