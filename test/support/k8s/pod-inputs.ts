/**
 * What the kubelet emulator (./pod-runner.ts) gives a pod's first container, read from the API:
 * its volumes as host directories (ConfigMap and Secret keys written as files, fsGroup applied), its
 * environment (envFrom, env, `$(VAR)` references, mount paths rewritten to host directories), its
 * working directory and its user.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import type { KubeRest } from './kube-rest.js';

// The parts of the Kubernetes objects the emulator reads (raw JSON).
export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion?: string;
  deletionTimestamp?: string;
  annotations?: Record<string, string>;
}
export interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}
export interface Volume {
  name: string;
  persistentVolumeClaim?: { claimName: string };
  configMap?: { name: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  secret?: { secretName: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  emptyDir?: object;
}
export interface KeySelector {
  name: string;
  key: string;
  optional?: boolean;
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; configMapKeyRef?: KeySelector; secretKeyRef?: KeySelector };
}
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  envFrom?: { prefix?: string; configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean } }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
  securityContext?: { runAsUser?: number; runAsGroup?: number };
}
export interface Pod {
  metadata: ObjectMeta;
  spec: {
    nodeName?: string;
    hostname?: string;
    serviceAccountName?: string;
    terminationGracePeriodSeconds?: number;
    securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
    containers: Container[];
    volumes?: Volume[];
  };
  status?: { podIP?: string; hostIP?: string };
}
export interface ObjectList<T> {
  metadata: { resourceVersion: string };
  items: T[];
}
interface DataObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** Retried until the pod goes away, as a kubelet waits for a missing ConfigMap. */
export class NotReadyYet extends Error {}

/** What the container runs with, on this host. */
export interface ContainerInputs {
  /** The environment as the container sees it (before mount paths are rewritten). */
  containerEnv: Map<string, string>;
  /** The environment on this host (mount paths rewritten to host directories). */
  env: Map<string, string>;
  workDir: string;
  user: { uid?: number; gid?: number };
  /** Rewrites a path at or below a mountPath to its host directory. */
  rewrite(value: string): string;
}

/** Resolves a pod's volumes and environment through the API server. */
export class PodInputs {
  constructor(
    private readonly rest: KubeRest,
    /** The emulator's host directory (see {@link volumeHostDir}). */
    private readonly root: string,
  ) {}

  /**
   * Host directories for every volume (fsGroup applied to the writable ones), then the first
   * container's environment, working directory and user; throws {@link NotReadyYet} while a
   * ConfigMap or Secret it needs is missing.
   */
  async resolve(pod: Pod, container: Container, podDir: string): Promise<ContainerInputs> {
    // Volumes → host directories.
    const volumeDirs = new Map<string, string>();
    for (const volume of pod.spec.volumes ?? []) {
      volumeDirs.set(volume.name, await this.prepareVolume(pod, volume, podDir));
    }
    const mounts = (container.volumeMounts ?? [])
      .filter((mount) => volumeDirs.has(mount.name))
      .map((mount) => ({
        mountPath: mount.mountPath.replace(/\/+$/, '') || '/',
        hostDir: path.join(volumeDirs.get(mount.name)!, mount.subPath ?? ''),
      }))
      .sort((a, b) => b.mountPath.length - a.mountPath.length);
    for (const mount of mounts) await fs.mkdir(mount.hostDir, { recursive: true });
    // The user the container runs as (container securityContext over the pod's), and fsGroup: like a
    // kubelet, writable volumes belong to that group (setgid, group-writable) and the command and
    // every exec run as that uid and gid.
    const user = {
      uid: container.securityContext?.runAsUser ?? pod.spec.securityContext?.runAsUser,
      gid: container.securityContext?.runAsGroup ?? pod.spec.securityContext?.runAsGroup,
    };
    const fsGroup = pod.spec.securityContext?.fsGroup;
    if (fsGroup !== undefined) {
      for (const volume of pod.spec.volumes ?? []) {
        if (volume.configMap !== undefined || volume.secret !== undefined) continue;
        const dir = volumeDirs.get(volume.name);
        if (dir === undefined) continue;
        const info = await fs.stat(dir);
        await fs.chown(dir, info.uid, fsGroup);
        await fs.chmod(dir, 0o2775);
      }
    }
    const rewrite = (value: string): string => {
      for (const mount of mounts) {
        if (value === mount.mountPath) return mount.hostDir;
        const prefix = mount.mountPath === '/' ? '/' : `${mount.mountPath}/`;
        if (value.startsWith(prefix)) return path.join(mount.hostDir, value.slice(prefix.length));
      }
      return value;
    };

    // Environment.
    const env = new Map<string, string>();
    const containerEnv = new Map<string, string>();
    for (const source of container.envFrom ?? []) {
      for (const [name, value] of await this.envFromValues(pod, source)) {
        containerEnv.set(name, value);
        env.set(name, rewrite(value));
      }
    }
    for (const variable of container.env ?? []) {
      const value = await this.envValue(pod, variable);
      if (value === null) continue;
      const expanded = expandReferences(value, containerEnv);
      containerEnv.set(variable.name, expanded);
      env.set(variable.name, rewrite(expanded));
    }

    const home = containerEnv.get('HOME');
    const homeMount = home === undefined ? undefined : mounts.find((mount) => mount.mountPath === home.replace(/\/+$/, ''));
    const defaultDir = homeMount?.hostDir ?? podDir;
    let workDir = defaultDir;
    if (container.workingDir !== undefined && container.workingDir !== '') {
      const rewritten = rewrite(container.workingDir);
      if (rewritten !== container.workingDir) workDir = rewritten;
    }
    return { containerEnv, env, workDir, user, rewrite };
  }

  /** Host directory of a volume; ConfigMap and Secret keys written as files. */
  private async prepareVolume(pod: Pod, volume: Volume, podDir: string): Promise<string> {
    if (volume.persistentVolumeClaim !== undefined) {
      const dir = volumeHostDir(this.root, pod.metadata.namespace, volume.persistentVolumeClaim.claimName);
      await fs.mkdir(dir, { recursive: true });
      return dir;
    }
    const dir = path.join(podDir, volume.name);
    await fs.mkdir(dir, { recursive: true });
    const source = volume.configMap ?? volume.secret;
    if (source === undefined) return dir;
    const isSecret = volume.secret !== undefined;
    const name = volume.configMap?.name ?? volume.secret!.secretName;
    const object = await this.rest.getOrNull<DataObject>(
      `/api/v1/namespaces/${pod.metadata.namespace}/${isSecret ? 'secrets' : 'configmaps'}/${name}`,
    );
    if (object === null) {
      if (source.optional === true) return dir;
      throw new NotReadyYet(`${isSecret ? 'Secret' : 'ConfigMap'} ${name} not found (volume ${volume.name})`);
    }
    const values = new Map<string, Buffer>();
    for (const [key, value] of Object.entries(object.data ?? {}))
      values.set(key, isSecret ? Buffer.from(value, 'base64') : Buffer.from(value, 'utf8'));
    for (const [key, value] of Object.entries(object.binaryData ?? {})) values.set(key, Buffer.from(value, 'base64'));
    const defaultMode = source.defaultMode ?? 0o644;
    const files: KeyToPath[] = source.items ?? [...values.keys()].map((key) => ({ key, path: key }));
    for (const item of files) {
      const content = values.get(item.key);
      if (content === undefined) {
        if (source.optional === true) continue;
        throw new NotReadyYet(`key ${item.key} not in ${name} (volume ${volume.name})`);
      }
      const file = path.join(dir, item.path);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, content);
      await fs.chmod(file, item.mode ?? defaultMode);
    }
    return dir;
  }

  /** The variables of an envFrom entry (every key of the ConfigMap or Secret, with the prefix). */
  private async envFromValues(pod: Pod, source: NonNullable<Container['envFrom']>[number]): Promise<[string, string][]> {
    const reference = source.configMapRef ?? source.secretRef;
    if (reference === undefined) return [];
    const isSecret = source.secretRef !== undefined;
    const object = await this.rest.getOrNull<DataObject>(
      `/api/v1/namespaces/${pod.metadata.namespace}/${isSecret ? 'secrets' : 'configmaps'}/${reference.name}`,
    );
    if (object === null) {
      if (reference.optional === true) return [];
      throw new NotReadyYet(`envFrom: ${isSecret ? 'Secret' : 'ConfigMap'} ${reference.name} not found`);
    }
    return Object.entries(object.data ?? {}).map(([key, value]) => [
      `${source.prefix ?? ''}${key}`,
      isSecret ? Buffer.from(value, 'base64').toString('utf8') : value,
    ]);
  }

  /** The value of an env entry, or null when an optional source is missing. */
  private async envValue(pod: Pod, variable: EnvVar): Promise<string | null> {
    if (variable.valueFrom === undefined) return variable.value ?? '';
    const { fieldRef, configMapKeyRef, secretKeyRef } = variable.valueFrom;
    if (fieldRef !== undefined) {
      const fields: Record<string, string | undefined> = {
        'metadata.name': pod.metadata.name,
        'metadata.namespace': pod.metadata.namespace,
        'metadata.uid': pod.metadata.uid,
        'spec.nodeName': pod.spec.nodeName,
        'spec.serviceAccountName': pod.spec.serviceAccountName,
        'status.podIP': pod.status?.podIP,
        'status.hostIP': pod.status?.hostIP,
      };
      const annotation = /^metadata\.annotations\['(.+)'\]$/.exec(fieldRef.fieldPath);
      if (annotation !== null) return pod.metadata.annotations?.[annotation[1]] ?? '';
      return fields[fieldRef.fieldPath] ?? '';
    }
    const selector = configMapKeyRef ?? secretKeyRef;
    if (selector !== undefined) {
      const isSecret = secretKeyRef !== undefined;
      const object = await this.rest.getOrNull<DataObject>(
        `/api/v1/namespaces/${pod.metadata.namespace}/${isSecret ? 'secrets' : 'configmaps'}/${selector.name}`,
      );
      const raw = object?.data?.[selector.key];
      if (raw === undefined) {
        if (selector.optional === true) return null;
        throw new NotReadyYet(`env ${variable.name}: key ${selector.key} of ${selector.name} not found`);
      }
      return isSecret ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    }
    return null;
  }
}

/** Where a PersistentVolumeClaim's volume lives on this host. */
export function volumeHostDir(root: string, namespace: string, claimName: string): string {
  return path.join(root, 'v', namespace, claimName);
}

/** Where a pod's own volumes (configMap, emptyDir) and its container log live on this host. */
export function podHostDir(root: string, uid: string): string {
  return path.join(root, 'p', uid.replace(/-/g, '').slice(0, 8));
}

/** Kubernetes' `$(VAR)` expansion in env values, command and args (`$$(VAR)` stays literal). */
export function expandReferences(value: string, env: ReadonlyMap<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match: string, name: string | undefined) => {
    if (name === undefined) return '$';
    return env.get(name) ?? match;
  });
}
