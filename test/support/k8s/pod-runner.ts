/**
 * The kubelet emulator of the test cluster. kwok fakes the nodes and the pod statuses but runs no
 * containers; this makes the pods on kwok's nodes behave like containers, with local processes:
 *
 * - Volumes are host directories under a short root: persistentVolumeClaim → `<root>/v/<namespace>/<claim>`
 *   (kept across pods, removed when the PVC is deleted), configMap/secret → `<root>/p/<uid8>/<volume>/`
 *   with the keys as files, emptyDir (and any other kind) → `<root>/p/<uid8>/<volume>/`.
 * - The first container's environment is its `envFrom` and `env` (values, fieldRef, configMapKeyRef,
 *   secretKeyRef, `$(VAR)` references expanded), with every value that is a volumeMount's mountPath or below it
 *   rewritten to the host directory (longest mountPath wins), PATH from this host and the marker
 *   `DEVPOCKET_TESTBED_POD=<pod uid>`. workingDir is rewritten the same way; by default it is the host
 *   directory of the mount at $HOME, else the pod directory.
 * - A kwok `Exec` object (same name and namespace as the pod) makes execs through the API server run
 *   local processes with that environment and working directory.
 * - The container's command + args (rewritten like env values) runs detached in its own process group,
 *   output to `<root>/p/<uid8>/container.log`.
 * - Only then is the pod annotated `testbed.devpocket.io/started: "true"`, which is what the testbed's
 *   pod-ready Stage waits for before reporting Running/Ready: a client that sees Running can exec at once.
 * - When the pod is deleted: SIGTERM to the command's process group and to every process whose
 *   environment holds the pod's marker (what execs started, daemons included), SIGKILL after at most
 *   3 s, the Exec object and the pod directory removed, then the pod deleted for good (as a kubelet
 *   does once its containers are gone). No other process is ever signalled.
 *
 * Pods whose image starts with one of {@link UNSTARTED_IMAGE_PREFIXES} are left to the testbed's
 * failure Stages (image pull error, crash loop): nothing runs for them.
 *
 * - Users: the command and every exec run as the container's runAsUser/runAsGroup (container over
 *   pod securityContext); writable volumes get the pod's fsGroup (setgid, group-writable), as a
 *   kubelet does. A command running as root gets this host's file system read-only (bubblewrap), with
 *   only the pods' volumes writable, so a template's system steps cannot change the host.
 *
 * Not emulated: init and further containers, restarts (a command that exits leaves the pod Running;
 * the exit is noted in container.log), probes, other securityContext fields, readOnly mounts,
 * resource limits, ConfigMap updates after the start, TERM
 * for TTY execs. Exec arguments run verbatim: only the environment and working directory carry host
 * paths, so commands should use variables (`cat "$CONFIG_DIR/file"`), not literal mount paths.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PassThrough } from 'node:stream';

import { Exec, type KubeConfig, type V1Status, Watch } from '@kubernetes/client-node';

import { KubeApiError, KubeRest, type KubeObject } from './kube-rest.js';

/** Set by the emulator once a pod's Exec object exists and its command was started. */
export const STARTED_ANNOTATION = 'testbed.devpocket.io/started';
/** In the environment of every process of a pod (command and execs): `DEVPOCKET_TESTBED_POD=<pod uid>`. */
export const POD_MARKER_ENV = 'DEVPOCKET_TESTBED_POD';
/** Images the emulator never starts: the testbed's Stages give them their failure statuses. */
export const PULL_ERROR_IMAGE_PREFIX = 'devpocket-test.invalid/pull-error';
export const CRASH_LOOP_IMAGE_PREFIX = 'devpocket-test.invalid/crash-loop';
export const UNSTARTED_IMAGE_PREFIXES: readonly string[] = [PULL_ERROR_IMAGE_PREFIX, CRASH_LOOP_IMAGE_PREFIX];

const MAX_GRACE_MS = 3_000;
const KILL_WAIT_MS = 2_000;
const RETRY_MS = 1_000;
const EXEC_PREFLIGHT_MS = 10_000;

// The parts of the Kubernetes objects the emulator reads (raw JSON).
interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion?: string;
  deletionTimestamp?: string;
  annotations?: Record<string, string>;
}
interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}
interface Volume {
  name: string;
  persistentVolumeClaim?: { claimName: string };
  configMap?: { name: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  secret?: { secretName: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  emptyDir?: object;
}
interface KeySelector {
  name: string;
  key: string;
  optional?: boolean;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; configMapKeyRef?: KeySelector; secretKeyRef?: KeySelector };
}
interface Container {
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
interface ObjectList<T> {
  metadata: { resourceVersion: string };
  items: T[];
}
interface DataObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** A pod the emulator looks after. */
interface Tracked {
  uid: string;
  namespace: string;
  name: string;
  state: 'starting' | 'started' | 'terminating' | 'gone';
  /** Set as soon as the pod is seen deleted: a start in progress gives up. */
  cancelled: boolean;
  process: ChildProcess | null;
  /** Whether the command was started (once, even if a later step of the start is retried). */
  commandStarted: boolean;
  /** The pod as last seen. */
  pod: Pod;
  queue: Promise<void>;
}

/** Retried until the pod goes away, as a kubelet waits for a missing ConfigMap. */
class NotReadyYet extends Error {}

export interface PodRunnerOptions {
  /** Credentials with access to every namespace (the admin kubeconfig). */
  kubeConfig: KubeConfig;
  /** Short host directory for volumes and pod directories (unix socket paths are limited to ~100 bytes). */
  root: string;
  /** The kwok nodes: pods scheduled elsewhere are ignored. */
  nodeNames: readonly string[];
  log: (line: string) => void;
  /** Called before anything runs for a pod (its uid is the marker of its processes). */
  onStarting?: (uid: string) => void;
  /** Called with the process group of every container command started. */
  onProcessGroup?: (pgid: number) => void;
}

export class PodRunner {
  private readonly rest: KubeRest;
  private readonly pods = new Map<string, Tracked>();
  private readonly watches = new Set<AbortController>();
  private readonly loops: Promise<void>[] = [];
  private stopped = false;

  private constructor(private readonly options: PodRunnerOptions) {
    this.rest = new KubeRest(options.kubeConfig);
  }

  /** Starts watching pods and PVCs; resolves once the first lists were processed. */
  static async start(options: PodRunnerOptions): Promise<PodRunner> {
    const runner = new PodRunner(options);
    await fs.mkdir(path.join(options.root, 'v'), { recursive: true });
    await fs.mkdir(path.join(options.root, 'p'), { recursive: true });
    const podsListed = runner.watchLoop<Pod>(
      '/api/v1/pods',
      (items) => runner.onPodList(items),
      (type, pod) => runner.onPodEvent(type, pod),
    );
    const claimsListed = runner.watchLoop<{ metadata: ObjectMeta }>(
      '/api/v1/persistentvolumeclaims',
      (items) => runner.onClaimList(items),
      (type, claim) => runner.onClaimEvent(type, claim),
    );
    await Promise.all([podsListed, claimsListed]);
    return runner;
  }

  /** Host directory of a PersistentVolumeClaim's volume. */
  volumeDir(namespace: string, claimName: string): string {
    return volumeHostDir(this.options.root, namespace, claimName);
  }

  /** Host directory of a pod (its non-PVC volumes and container.log). */
  podDir(uid: string): string {
    return podHostDir(this.options.root, uid);
  }

  /** Stops watching and ends the processes of every pod it started (the pods are left as they are). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const controller of this.watches) controller.abort();
    this.watches.clear();
    await Promise.allSettled(this.loops);
    await Promise.allSettled(
      [...this.pods.values()].map(async (tracked) => {
        tracked.cancelled = true;
        await tracked.queue;
        if (tracked.state !== 'gone') await this.killProcesses(tracked, 0);
      }),
    );
  }

  // ---- watches -------------------------------------------------------------------------------

  /**
   * List, then watch from the list's resourceVersion; when the watch ends (timeout, error, 410 Gone)
   * list again. Resolves once the first list was handled; runs until stop().
   */
  private watchLoop<T extends { metadata: ObjectMeta }>(
    collection: string,
    onList: (items: T[]) => void,
    onEvent: (type: string, object: T) => void,
  ): Promise<void> {
    let firstList: () => void = () => undefined;
    const listed = new Promise<void>((resolve) => (firstList = resolve));
    const loop = (async () => {
      while (!this.stopped) {
        try {
          const list = await this.rest.call<ObjectList<T>>('GET', collection);
          for (const item of list.items) onEvent('ADDED', item);
          onList(list.items);
          firstList();
          await new Promise<void>((resolve) => {
            const watch = new Watch(this.options.kubeConfig);
            let controller: AbortController | null = null;
            const finish = (): void => {
              if (controller !== null) this.watches.delete(controller);
              resolve();
            };
            watch
              .watch(
                collection,
                { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
                (type: string, object: unknown) => {
                  if (type === 'ERROR') {
                    controller?.abort();
                    finish();
                  } else if (type !== 'BOOKMARK') {
                    onEvent(type, object as T);
                  }
                },
                () => finish(),
              )
              .then((started) => {
                controller = started;
                if (this.stopped) started.abort();
                else this.watches.add(started);
              })
              .catch(() => finish());
          });
        } catch (error) {
          if (!this.stopped) this.options.log(`pod-runner: watch ${collection}: ${describe(error)}`);
        }
        if (!this.stopped) await delay(200);
      }
      firstList();
    })();
    this.loops.push(loop);
    return listed;
  }

  private onPodList(items: Pod[]): void {
    const present = new Set(items.map((pod) => pod.metadata.uid));
    for (const tracked of this.pods.values()) {
      if (!present.has(tracked.uid) && tracked.state !== 'gone') this.onPodEvent('DELETED', tracked.pod);
    }
  }

  private onPodEvent(type: string, pod: Pod): void {
    const uid = pod.metadata.uid;
    let tracked = this.pods.get(uid);
    if (type === 'DELETED' || pod.metadata.deletionTimestamp !== undefined) {
      if (tracked === undefined || tracked.cancelled) return;
      tracked.cancelled = true;
      tracked.pod = pod;
      const existing = type !== 'DELETED';
      this.enqueue(tracked, () => this.terminate(tracked!, existing));
      return;
    }
    if (tracked !== undefined) {
      tracked.pod = pod;
      return;
    }
    const nodeName = pod.spec.nodeName;
    if (nodeName === undefined || !this.options.nodeNames.includes(nodeName)) return;
    const image = pod.spec.containers[0]?.image ?? '';
    if (UNSTARTED_IMAGE_PREFIXES.some((prefix) => image.startsWith(prefix))) return;

    tracked = {
      uid,
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      state: 'starting',
      cancelled: false,
      process: null,
      commandStarted: false,
      pod,
      queue: Promise.resolve(),
    };
    this.pods.set(uid, tracked);
    const started = pod.metadata.annotations?.[STARTED_ANNOTATION] === 'true';
    if (started) {
      // Started by an earlier emulator: only its deletion is handled here.
      tracked.state = 'started';
      return;
    }
    const starting = tracked;
    this.enqueue(starting, () => this.startPod(starting));
  }

  /** After a (re)list: directories of PVCs that no longer exist (deleted while not watching) go. */
  private onClaimList(items: { metadata: ObjectMeta }[]): void {
    const existing = new Set(items.map((claim) => this.volumeDir(claim.metadata.namespace, claim.metadata.name)));
    const volumes = path.join(this.options.root, 'v');
    void (async () => {
      for (const namespace of await fs.readdir(volumes).catch(() => [])) {
        for (const name of await fs.readdir(path.join(volumes, namespace)).catch(() => [])) {
          const dir = path.join(volumes, namespace, name);
          if (existing.has(dir)) continue;
          // Created since the list? Only a claim that is gone now loses its directory.
          if ((await this.rest.getOrNull(`/api/v1/namespaces/${namespace}/persistentvolumeclaims/${name}`)) !== null) continue;
          await fs.rm(dir, { recursive: true, force: true });
          this.options.log(`pod-runner: PVC ${namespace}/${name} is gone; removed ${dir}`);
        }
      }
    })().catch((error: unknown) => this.options.log(`pod-runner: cleaning ${volumes}: ${describe(error)}`));
  }

  private onClaimEvent(type: string, claim: { metadata: ObjectMeta }): void {
    if (type !== 'DELETED') return;
    const dir = this.volumeDir(claim.metadata.namespace, claim.metadata.name);
    fs.rm(dir, { recursive: true, force: true }).then(
      () => this.options.log(`pod-runner: PVC ${claim.metadata.namespace}/${claim.metadata.name} deleted; removed ${dir}`),
      (error: unknown) => this.options.log(`pod-runner: removing ${dir}: ${describe(error)}`),
    );
  }

  private enqueue(tracked: Tracked, task: () => Promise<void>): void {
    tracked.queue = tracked.queue.then(task).catch((error: unknown) => {
      this.options.log(`pod-runner: ${tracked.namespace}/${tracked.name}: ${describe(error)}`);
    });
  }

  // ---- start ---------------------------------------------------------------------------------

  /** Retries until started or the pod goes away, as a kubelet does (a missing ConfigMap, an API error). */
  private async startPod(tracked: Tracked): Promise<void> {
    const ref = `${tracked.namespace}/${tracked.name}`;
    let lastMessage = '';
    for (let attempt = 0; ; attempt += 1) {
      if (tracked.cancelled) return;
      try {
        await this.tryStart(tracked);
        return;
      } catch (error) {
        const message = `${error instanceof NotReadyYet ? 'waiting: ' : 'failed to start: '}${describe(error)}`;
        if (message !== lastMessage) this.options.log(`pod-runner: ${ref}: ${message} (retrying)`);
        lastMessage = message;
        await delay(Math.min(RETRY_MS * 2 ** Math.min(attempt, 3), 5_000));
      }
    }
  }

  private async tryStart(tracked: Tracked): Promise<void> {
    const pod = tracked.pod;
    const container = pod.spec.containers[0];
    if (container === undefined) return;
    const podDir = this.podDir(tracked.uid);
    await fs.mkdir(podDir, { recursive: true });

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
    env.set('PATH', process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin');
    env.set(POD_MARKER_ENV, tracked.uid);
    const environment = Object.fromEntries(env);

    const home = containerEnv.get('HOME');
    const homeMount = home === undefined ? undefined : mounts.find((mount) => mount.mountPath === home.replace(/\/+$/, ''));
    const defaultDir = homeMount?.hostDir ?? podDir;
    let workDir = defaultDir;
    if (container.workingDir !== undefined && container.workingDir !== '') {
      const rewritten = rewrite(container.workingDir);
      if (rewritten !== container.workingDir) workDir = rewritten;
    }

    // The Exec object, so that execs through the API server run here with that environment.
    if (tracked.cancelled) return;
    this.options.onStarting?.(tracked.uid);
    await this.rest.apply({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Exec',
      metadata: {
        name: tracked.name,
        namespace: tracked.namespace,
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: tracked.name, uid: tracked.uid }],
      },
      spec: {
        execs: [
          {
            local: {
              workDir,
              envs: [...env].map(([name, value]) => ({ name, value })),
              ...(user.uid !== undefined ? { securityContext: { runAsUser: user.uid, runAsGroup: user.gid ?? 0 } } : {}),
            },
          },
        ],
      },
    });
    await this.execPreflight(tracked);

    // The container's command.
    if (tracked.cancelled) return;
    const argv = [...(container.command ?? []), ...(container.args ?? [])].map((arg) => rewrite(expandReferences(arg, containerEnv)));
    const logFile = path.join(podDir, 'container.log');
    if (!tracked.commandStarted) {
      tracked.commandStarted = true;
      if ((container.command ?? []).length > 0) {
        tracked.process = this.spawnCommand(tracked, argv, workDir, environment, logFile, user);
      } else {
        await fs.appendFile(logFile, `[testbed] no command in the pod spec (image entrypoint unknown): nothing runs\n`);
      }
    }

    // Only now may the pod be reported Running.
    const patched = await this.rest.request(
      'PATCH',
      `/api/v1/namespaces/${tracked.namespace}/pods/${tracked.name}`,
      {
        metadata: { uid: tracked.uid, annotations: { [STARTED_ANNOTATION]: 'true' } },
      },
      'application/merge-patch+json',
    );
    if (patched.status === 404 || patched.status === 409 || patched.status === 422) {
      tracked.cancelled = true;
      tracked.state = 'started';
      await this.terminate(tracked, false);
      return;
    }
    if (patched.status >= 300) throw new KubeApiError('PATCH', `pods/${tracked.name}`, patched.status, patched.text);
    tracked.state = 'started';
    this.options.log(`pod-runner: started ${tracked.namespace}/${tracked.name} (${tracked.uid}) in ${workDir}`);
  }

  /** Host directory of a volume; ConfigMap and Secret keys written as files. */
  private async prepareVolume(pod: Pod, volume: Volume, podDir: string): Promise<string> {
    if (volume.persistentVolumeClaim !== undefined) {
      const dir = this.volumeDir(pod.metadata.namespace, volume.persistentVolumeClaim.claimName);
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

  /**
   * Runs `true` through the API server until it succeeds: kwok has then seen the Exec object, so
   * the first exec of a client that sees the pod Running cannot race it.
   */
  private async execPreflight(tracked: Tracked): Promise<void> {
    const container = tracked.pod.spec.containers[0].name;
    const deadline = Date.now() + EXEC_PREFLIGHT_MS;
    let lastError = '';
    while (Date.now() < deadline && !tracked.cancelled) {
      try {
        const status = await execOnce(this.options.kubeConfig, tracked.namespace, tracked.name, container, ['true']);
        if (status === 'Success') return;
        lastError = status;
      } catch (error) {
        lastError = describe(error);
      }
      await delay(100);
    }
    if (!tracked.cancelled) this.options.log(`pod-runner: ${tracked.namespace}/${tracked.name}: exec preflight failed: ${lastError}`);
  }

  private spawnCommand(
    tracked: Tracked,
    argv: string[],
    cwd: string,
    env: Record<string, string>,
    logFile: string,
    user: { uid?: number; gid?: number },
  ): ChildProcess {
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    // A command running as root would run as root on this host: it gets the host's file system
    // read-only (bubblewrap), with only the pods' volumes writable, as in a container.
    const asRoot = (user.uid ?? 0) === 0;
    const [file, ...args] = asRoot && bubblewrapAvailable() ? [...rootSandbox(this.options.root), ...argv] : argv;
    try {
      child = spawn(file ?? argv[0], args, {
        cwd,
        env,
        detached: true,
        stdio: ['ignore', fd, fd],
        ...(asRoot ? {} : { uid: user.uid, gid: user.gid ?? 0 }),
      });
    } finally {
      closeSync(fd);
    }
    child.unref();
    if (child.pid !== undefined) this.options.onProcessGroup?.(child.pid);
    const ref = `${tracked.namespace}/${tracked.name}`;
    child.once('error', (error) => {
      this.options.log(`pod-runner: ${ref}: cannot run ${argv[0]}: ${error.message}`);
      void fs.appendFile(logFile, `[testbed] cannot run ${JSON.stringify(argv)}: ${error.message}\n`).catch(() => undefined);
    });
    child.once('exit', (code, signal) => {
      const how = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
      if (tracked.state !== 'terminating' && tracked.state !== 'gone') this.options.log(`pod-runner: ${ref}: command ended (${how})`);
      void fs.appendFile(logFile, `[testbed] command ended (${how})\n`).catch(() => undefined);
    });
    return child;
  }

  // ---- termination ---------------------------------------------------------------------------

  /** Ends the pod's processes, removes its Exec object and directory, then deletes the pod if it still exists. */
  private async terminate(tracked: Tracked, podExists: boolean): Promise<void> {
    if (tracked.state === 'gone') return;
    tracked.state = 'terminating';
    const requested = tracked.pod.spec.terminationGracePeriodSeconds;
    const graceMs = Math.min(MAX_GRACE_MS, (requested ?? 30) * 1000);
    await this.killProcesses(tracked, graceMs);

    const exec = await this.rest.getOrNull<KubeObject & { metadata: { ownerReferences?: { uid: string }[] } }>(
      `/apis/kwok.x-k8s.io/v1alpha1/namespaces/${tracked.namespace}/execs/${tracked.name}`,
    );
    if (exec !== null && exec.metadata.ownerReferences?.some((owner) => owner.uid === tracked.uid) === true) {
      await this.rest.delete(
        { ...exec, apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'Exec' },
        {
          uid: exec.metadata.uid,
          resourceVersion: exec.metadata.resourceVersion,
        },
      );
    }
    await fs.rm(this.podDir(tracked.uid), { recursive: true, force: true });
    if (podExists) {
      await this.rest.delete(
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: tracked.name, namespace: tracked.namespace } },
        {
          gracePeriodSeconds: 0,
          uid: tracked.uid,
        },
      );
    }
    tracked.state = 'gone';
    tracked.process = null;
    this.options.log(`pod-runner: ${tracked.namespace}/${tracked.name} (${tracked.uid}) terminated`);
  }

  /** SIGTERM to the command's group and every process with the pod's marker; SIGKILL what is left after graceMs. */
  private async killProcesses(tracked: Tracked, graceMs: number): Promise<void> {
    const marker = `${POD_MARKER_ENV}=${tracked.uid}`;
    const group = tracked.process?.pid;
    const alive = async (): Promise<number[]> => {
      const pids = await pidsWithEnvironmentEntry(marker);
      if (group !== undefined && groupExists(group)) pids.push(-group);
      return pids;
    };
    const signalAll = (pids: number[], signal: NodeJS.Signals): void => {
      for (const pid of pids) {
        try {
          process.kill(pid, signal);
        } catch {
          // gone meanwhile
        }
      }
    };
    let remaining = await alive();
    if (remaining.length === 0) return;
    signalAll(remaining, 'SIGTERM');
    const termDeadline = Date.now() + graceMs;
    while (remaining.length > 0 && Date.now() < termDeadline) {
      await delay(100);
      remaining = await alive();
    }
    const killDeadline = Date.now() + KILL_WAIT_MS;
    while (remaining.length > 0 && Date.now() < killDeadline) {
      signalAll(remaining, 'SIGKILL');
      await delay(50);
      remaining = await alive();
    }
    if (remaining.length > 0)
      this.options.log(`pod-runner: ${tracked.namespace}/${tracked.name}: processes survived SIGKILL: ${remaining.join(' ')}`);
  }
}

/** Pids (not this process) whose environment holds exactly `entry` (`NAME=value`). */
/** Where a PersistentVolumeClaim's volume lives on this host. */
export function volumeHostDir(root: string, namespace: string, claimName: string): string {
  return path.join(root, 'v', namespace, claimName);
}

/** Where a pod's own volumes (configMap, emptyDir) and its container log live on this host. */
export function podHostDir(root: string, uid: string): string {
  return path.join(root, 'p', uid.replace(/-/g, '').slice(0, 8));
}

let bubblewrap: boolean | null = null;

/** Whether bubblewrap (`bwrap`) is on PATH. */
function bubblewrapAvailable(): boolean {
  bubblewrap ??= spawnSync('bwrap', ['--version'], { stdio: 'ignore' }).status === 0;
  return bubblewrap;
}

/** bubblewrap arguments: this host read-only, a private /tmp, the pods' volumes (under `root`) writable. */
function rootSandbox(root: string): string[] {
  return ['bwrap', '--ro-bind', '/', '/', '--dev-bind', '/dev', '/dev', '--tmpfs', '/tmp', '--bind', root, root, '--'];
}

export async function pidsWithEnvironmentEntry(entry: string): Promise<number[]> {
  const needle = Buffer.from(`${entry}\0`);
  const result: number[] = [];
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let environ: Buffer;
    try {
      environ = await fs.readFile(`/proc/${name}/environ`);
    } catch {
      continue;
    }
    const at = environ.indexOf(needle);
    if (at === 0 || (at > 0 && environ[at - 1] === 0)) result.push(pid);
  }
  return result;
}

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kubernetes' `$(VAR)` expansion in env values, command and args (`$$(VAR)` stays literal). */
export function expandReferences(value: string, env: ReadonlyMap<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match: string, name: string | undefined) => {
    if (name === undefined) return '$';
    return env.get(name) ?? match;
  });
}

/** Runs a command through the API server's exec (no stdin, output discarded); resolves with the status. */
export function execOnce(kubeConfig: KubeConfig, namespace: string, pod: string, container: string, command: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const sink = new PassThrough();
    sink.resume();
    let settled = false;
    const settle = (status: string): void => {
      if (!settled) {
        settled = true;
        resolve(status);
      }
    };
    new Exec(kubeConfig)
      .exec(namespace, pod, container, command, sink, sink, null, false, (status: V1Status) => {
        settle(status.status === 'Success' ? 'Success' : `${status.status ?? ''} ${status.message ?? ''}`.trim());
      })
      .then((socket) => {
        socket.on('close', () => settle('closed without status'));
      })
      .catch(reject);
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
