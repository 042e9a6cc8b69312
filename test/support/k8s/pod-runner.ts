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
 *
 * What a pod's container gets (volumes, environment, user) is resolved by ./pod-inputs.ts; its
 * processes are started and ended by ./pod-processes.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import type { KubeConfig } from '@kubernetes/client-node';

import { KubeApiError, KubeRest, type KubeObject } from './kube-rest.js';
import { expandReferences, NotReadyYet, type ObjectMeta, type Pod, PodInputs, podHostDir, volumeHostDir } from './pod-inputs.js';
import { execOnce, killPodProcesses, spawnContainerCommand } from './pod-processes.js';
import { watchCollection, type WatchLoop } from './watch-loop.js';

/** Set by the emulator once a pod's Exec object exists and its command was started. */
export const STARTED_ANNOTATION = 'testbed.devpocket.io/started';
/** In the environment of every process of a pod (command and execs): `DEVPOCKET_TESTBED_POD=<pod uid>`. */
export const POD_MARKER_ENV = 'DEVPOCKET_TESTBED_POD';
/** Images the emulator never starts: the testbed's Stages give them their failure statuses. */
export const PULL_ERROR_IMAGE_PREFIX = 'devpocket-test.invalid/pull-error';
export const CRASH_LOOP_IMAGE_PREFIX = 'devpocket-test.invalid/crash-loop';
export const UNSTARTED_IMAGE_PREFIXES: readonly string[] = [PULL_ERROR_IMAGE_PREFIX, CRASH_LOOP_IMAGE_PREFIX];

const MAX_GRACE_MS = 3_000;
const RETRY_MS = 1_000;
const EXEC_PREFLIGHT_MS = 10_000;

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
  private readonly inputs: PodInputs;
  private readonly pods = new Map<string, Tracked>();
  private readonly watches: WatchLoop[] = [];

  private constructor(private readonly options: PodRunnerOptions) {
    this.rest = new KubeRest(options.kubeConfig);
    this.inputs = new PodInputs(this.rest, options.root);
  }

  /** Starts watching pods and PVCs; resolves once the first lists were processed. */
  static async start(options: PodRunnerOptions): Promise<PodRunner> {
    const runner = new PodRunner(options);
    await fs.mkdir(path.join(options.root, 'v'), { recursive: true });
    await fs.mkdir(path.join(options.root, 'p'), { recursive: true });
    // A list hands every item over as ADDED, then the whole list (what was deleted while not watching).
    const log = (line: string): void => options.log(`pod-runner: ${line}`);
    runner.watches.push(
      watchCollection<Pod>(
        options.kubeConfig,
        '/api/v1/pods',
        (type, pod) => runner.onPodEvent(type, pod),
        log,
        (items) => runner.onPodList(items),
      ),
      watchCollection<{ metadata: ObjectMeta }>(
        options.kubeConfig,
        '/api/v1/persistentvolumeclaims',
        (type, claim) => runner.onClaimEvent(type, claim),
        log,
        (items) => runner.onClaimList(items),
      ),
    );
    await Promise.all(runner.watches.map((watch) => watch.listed));
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
    await Promise.allSettled(this.watches.map((watch) => watch.stop()));
    await Promise.allSettled(
      [...this.pods.values()].map(async (tracked) => {
        tracked.cancelled = true;
        await tracked.queue;
        if (tracked.state !== 'gone') await this.killProcesses(tracked, 0);
      }),
    );
  }

  // ---- watches -------------------------------------------------------------------------------

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

    const { containerEnv, env, workDir, user, rewrite } = await this.inputs.resolve(pod, container, podDir);
    env.set('PATH', process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin');
    env.set(POD_MARKER_ENV, tracked.uid);
    const environment = Object.fromEntries(env);

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
        tracked.process = spawnContainerCommand({
          argv,
          cwd: workDir,
          env: environment,
          logFile,
          user,
          root: this.options.root,
          ref: `${tracked.namespace}/${tracked.name}`,
          log: this.options.log,
          onProcessGroup: this.options.onProcessGroup,
          ending: () => tracked.state === 'terminating' || tracked.state === 'gone',
        });
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
    const remaining = await killPodProcesses(`${POD_MARKER_ENV}=${tracked.uid}`, tracked.process?.pid, graceMs);
    if (remaining.length > 0)
      this.options.log(`pod-runner: ${tracked.namespace}/${tracked.name}: processes survived SIGKILL: ${remaining.join(' ')}`);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
