import { setTimeout as delay } from 'node:timers/promises';
import { Logger, OnApplicationShutdown } from '@nestjs/common';
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { AppError } from '../../common/errors/app-error.js';
import { RuntimeError } from '../runtime.errors.js';
import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';
import { installationNotes, specHash } from '../installation.js';
import { LineSplitter, LogPager } from '../log-lines.js';
import {
  assertEnvironmentId,
  ENVIRONMENT_ID_PATTERN,
  RuntimeProvider,
  type EnvironmentSpec,
  type ExecOptions,
  type ExecSession,
  type LogPage,
  type LogQuery,
  type RuntimeMetrics,
  type RuntimeStatus,
  type Unsubscribe,
} from '../runtime.provider.js';
import { KubernetesApi, KubernetesApiError, reasonOf, statusOf } from './kubernetes-api.js';
import { EXEC_KEEPALIVE_MS, KubernetesExecSession } from './kubernetes-exec.js';
import {
  ANNOTATION_INSTALLATION,
  configMapFor,
  namespaceFor,
  userNamespace,
  CONTAINER_NAME,
  LABEL_ENVIRONMENT_ID,
  MANAGED_SELECTOR,
  namesFor,
  serviceFor,
  statefulSetFor,
  volumeClaimFor,
} from './manifests.js';
import { FOLLOW_LOG_SCRIPT, LOG_SCRIPT, METRICS_SCRIPT, parseKeyValues, STATUS_SCRIPT } from './pod-scripts.js';
import { viewPod, type PodView } from './pod-status.js';

export interface KubernetesRuntimeOptions {
  /** How long stop() waits for the pod to be gone (default 90 s). */
  stopTimeoutMs?: number;
  /** How long destroy() waits for every object to be gone (default 120 s). */
  destroyTimeoutMs?: number;
  /** Delay before a dropped pod watch is re-opened; doubles up to 30 s (default 500 ms). */
  watchRetryMs?: number;
  /** WebSocket ping interval of exec sessions (default EXEC_KEEPALIVE_MS, 25 s). */
  execKeepaliveMs?: number;
}

interface Progress {
  stepsDone: number;
  stepsTotal: number;
  failedSteps: number[];
  completed: boolean;
}

/** `<spec hash> <done> <total> <failed steps or ->`, as the entrypoint writes it. */
function parseProgress(line: string | undefined): (Progress & { hash: string }) | null {
  if (!line) return null;
  const [hash, done, total, failed] = line.trim().split(/\s+/);
  const stepsDone = Number(done);
  const stepsTotal = Number(total);
  if (!hash || !Number.isInteger(stepsDone) || !Number.isInteger(stepsTotal)) return null;
  const failedSteps = !failed || failed === '-' ? [] : failed.split(',').map(Number).filter(Number.isInteger);
  return { hash, stepsDone, stepsTotal, failedSteps, completed: stepsDone >= stepsTotal };
}

function toInstallation(progress: Progress | null, interrupted: boolean): RuntimeStatus['installation'] {
  if (!progress) return null;
  return {
    completed: progress.completed,
    failed: progress.failedSteps.length > 0 || (interrupted && !progress.completed),
    stepsDone: progress.stepsDone,
    stepsTotal: progress.stepsTotal,
  };
}

function joinNotes(notes: (string | null)[]): string | null {
  const present = notes.filter((note): note is string => note !== null && note !== '');
  return present.length > 0 ? present.join('; ') : null;
}

const ABSENT: RuntimeStatus = { state: 'absent', message: null, installation: null };

/** An environment and the namespace its objects are in. */
interface Located {
  id: string;
  namespace: string;
}

/**
 * The Kubernetes runtime (RUNTIME=kubernetes; see docs/kubernetes.md). Each environment is a
 * ConfigMap (entrypoint, tmux.conf, startup steps), a PersistentVolumeClaim (the home), a
 * StatefulSet of one replica (scaled to 0 to stop), and a ClusterIP Service for the template's
 * ports, all named `dp-<id>` in one namespace. Status comes from the API objects and, for a
 * running pod, one exec that asks the entrypoint how far it got; watchers are fed by a watch on
 * pods. Every process (terminals included) is a Kubernetes exec, so the API servers need no
 * access to the nodes.
 */
export class KubernetesRuntime extends RuntimeProvider implements OnApplicationShutdown {
  readonly kind = 'kubernetes' as const;
  private readonly logger = new Logger('KubernetesRuntime');
  private readonly stopTimeoutMs: number;
  private readonly destroyTimeoutMs: number;
  private readonly watchRetryMs: number;
  private readonly execKeepaliveMs: number;
  private readonly sessions = new Set<ExecSession>();
  private readonly listeners = new Set<(environmentId: string, status: RuntimeStatus) => void>();
  private readonly lastSeen = new Map<string, string>();
  private readonly cpuSamples = new Map<string, { usec: number; at: number }>();
  private watchAbort: AbortController | null = null;
  private watching = false;
  private observing: Promise<void> = Promise.resolve();
  /** Per-user mode: the namespace each environment was found in, and the namespaces known to exist. */
  private readonly namespaces = new Map<string, string>();
  private readonly readyNamespaces = new Set<string>();

  constructor(
    private readonly config: KubernetesConfig,
    readonly api: KubernetesApi = new KubernetesApi(config),
    options: KubernetesRuntimeOptions = {},
  ) {
    super();
    this.stopTimeoutMs = options.stopTimeoutMs ?? 90_000;
    this.destroyTimeoutMs = options.destroyTimeoutMs ?? 120_000;
    this.watchRetryMs = options.watchRetryMs ?? 500;
    this.execKeepaliveMs = options.execKeepaliveMs ?? EXEC_KEEPALIVE_MS;
  }

  /**
   * Where an environment's objects are: the configured namespace, or (KUBERNETES_NAMESPACE_MODE=
   * per-user) its owner's `<prefix>-<user id>`. An environment known only by id (an orphan the
   * reconciler found) is looked up by label across namespaces; null when it exists nowhere.
   */
  private async locate(spec: EnvironmentSpec): Promise<Located | null> {
    if (this.config.namespaceMode === 'shared') return { id: spec.id, namespace: this.config.namespace };
    const known = this.namespaces.get(spec.id);
    if (known) return { id: spec.id, namespace: known };
    if (ENVIRONMENT_ID_PATTERN.test(spec.userId)) return { id: spec.id, namespace: userNamespace(this.config.namespace, spec.userId) };
    const found = await this.findNamespace(spec.id);
    return found ? { id: spec.id, namespace: found } : null;
  }

  private async findNamespace(id: string): Promise<string | null> {
    const labelSelector = `${LABEL_ENVIRONMENT_ID}=${id}`;
    const lists = await Promise.all([
      this.api.call('list StatefulSets', () => this.api.apps.listStatefulSetForAllNamespaces({ labelSelector })),
      this.api.call('list PersistentVolumeClaims', () => this.api.core.listPersistentVolumeClaimForAllNamespaces({ labelSelector })),
      this.api.call('list ConfigMaps', () => this.api.core.listConfigMapForAllNamespaces({ labelSelector })),
    ]);
    for (const list of lists) {
      const namespace = list.items[0]?.metadata?.namespace;
      if (namespace) return this.remember(id, namespace);
    }
    return null;
  }

  private remember(id: string, namespace: string): string {
    if (this.config.namespaceMode === 'per-user') this.namespaces.set(id, namespace);
    return namespace;
  }

  /** Per-user namespaces are created on first use, labelled, with the baseline Pod Security level. */
  private async ensureNamespace(spec: EnvironmentSpec, namespace: string): Promise<void> {
    if (this.config.namespaceMode === 'shared' || this.readyNamespaces.has(namespace)) return;
    await this.api.ensure(`create Namespace ${namespace}`, () => this.api.core.createNamespace({ body: namespaceFor(spec, namespace) }));
    this.readyNamespaces.add(namespace);
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  async provision(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    const names = namesFor(spec.id);
    const at = (await this.locate(spec)) ?? { id: spec.id, namespace: userNamespace(this.config.namespace, spec.userId) };
    const namespace = this.remember(spec.id, at.namespace);
    await this.ensureNamespace(spec, namespace);
    await this.api.ensure(`create ConfigMap ${names.workload}`, () =>
      this.api.core.createNamespacedConfigMap({ namespace, body: configMapFor(spec, this.config, namespace) }),
    );
    await this.syncConfigMap(spec, namespace);
    await this.api.ensure(`create PersistentVolumeClaim ${names.volume}`, () =>
      this.api.core.createNamespacedPersistentVolumeClaim({ namespace, body: volumeClaimFor(spec, this.config, namespace) }),
    );
    const service = serviceFor(spec, this.config, namespace);
    if (service) {
      await this.api.ensure(`create Service ${names.workload}`, () => this.api.core.createNamespacedService({ namespace, body: service }));
    }
    const created = await this.api.ensure(`create StatefulSet ${names.workload}`, () =>
      this.api.apps.createNamespacedStatefulSet({ namespace, body: statefulSetFor(spec, this.config, 1, namespace) }),
    );
    if (created === 'existed') await this.scale({ id: spec.id, namespace }, 1);
  }

  /** A ConfigMap from an older template version (or server version) is brought up to date; the pod reads it at its next start. */
  private async syncConfigMap(spec: EnvironmentSpec, namespace: string): Promise<void> {
    const names = namesFor(spec.id);
    const wanted = configMapFor(spec, this.config, namespace);
    const current = await this.api.find(`read ConfigMap ${names.workload}`, () =>
      this.api.core.readNamespacedConfigMap({ name: names.workload, namespace }),
    );
    if (!current) return;
    const data: Record<string, string | null> = { ...wanted.data };
    for (const key of Object.keys(current.data ?? {})) if (!(key in data)) data[key] = null;
    const same = Object.entries(data).every(([key, value]) => (current.data ?? {})[key] === (value ?? undefined));
    if (same) return;
    await this.api.call(`update ConfigMap ${names.workload}`, () =>
      this.api.core.patchNamespacedConfigMap({
        name: names.workload,
        namespace,
        body: { metadata: { annotations: wanted.metadata?.annotations }, data },
      }),
    );
  }

  async start(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    // Whatever is missing is created again (a half-created environment heals); then one replica.
    await this.provision(spec);
  }

  async stop(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    const names = namesFor(spec.id);
    const at = await this.locate(spec);
    if (!at) return;
    const workload = await this.readWorkload(at);
    if (!workload) return;
    if ((workload.spec?.replicas ?? 0) > 0) {
      // The pod (and its view of the startup script) goes away: keep the progress on the StatefulSet.
      const progress = await this.readProgress(at).catch(() => null);
      const annotations = progress ? { [ANNOTATION_INSTALLATION]: JSON.stringify(progress) } : {};
      await this.api.call(`scale StatefulSet ${names.workload} to 0`, () =>
        this.api.apps.patchNamespacedStatefulSet({
          name: names.workload,
          namespace: at.namespace,
          body: { metadata: { annotations }, spec: { replicas: 0 } },
        }),
      );
    }
    await this.waitUntil(`the pod ${names.pod} to end`, this.stopTimeoutMs, async () => (await this.readPod(at)) === null);
  }

  async destroy(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    const names = namesFor(spec.id);
    const at = await this.locate(spec);
    if (!at) return;
    const { namespace } = at;
    await this.api.remove(`delete StatefulSet ${names.workload}`, () =>
      this.api.apps.deleteNamespacedStatefulSet({
        name: names.workload,
        namespace,
        propagationPolicy: 'Foreground',
        gracePeriodSeconds: 5,
      }),
    );
    await this.api.remove(`delete Service ${names.workload}`, () =>
      this.api.core.deleteNamespacedService({ name: names.workload, namespace }),
    );
    await this.api.remove(`delete ConfigMap ${names.workload}`, () =>
      this.api.core.deleteNamespacedConfigMap({ name: names.workload, namespace }),
    );
    await this.api.remove(`delete PersistentVolumeClaim ${names.volume}`, () =>
      this.api.core.deleteNamespacedPersistentVolumeClaim({ name: names.volume, namespace }),
    );
    // The pod goes first (foreground deletion), then the claim's protection lets the volume go.
    await this.waitUntil(`environment ${spec.id} to be removed`, this.destroyTimeoutMs, async () => {
      const [workload, pod, claim] = await Promise.all([
        this.readWorkload(at),
        this.readPod(at),
        this.api.find(`read PersistentVolumeClaim ${names.volume}`, () =>
          this.api.core.readNamespacedPersistentVolumeClaim({ name: names.volume, namespace }),
        ),
      ]);
      return workload === null && pod === null && claim === null;
    });
    this.cpuSamples.delete(spec.id);
    this.namespaces.delete(spec.id);
  }

  private async scale(at: Located, replicas: 0 | 1): Promise<void> {
    const names = namesFor(at.id);
    await this.api.call(`scale StatefulSet ${names.workload} to ${replicas}`, () =>
      this.api.apps.patchNamespacedStatefulSet({ name: names.workload, namespace: at.namespace, body: { spec: { replicas } } }),
    );
  }

  private async waitUntil(what: string, timeoutMs: number, done: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let pause = 100;
    while (!(await done())) {
      if (Date.now() > deadline)
        throw new KubernetesApiError(`Kubernetes runtime: timed out after ${timeoutMs / 1000} s waiting for ${what}`, null);
      await delay(pause);
      pause = Math.min(1000, pause * 2);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Status

  private readWorkload(at: Located): Promise<V1StatefulSet | null> {
    const { workload } = namesFor(at.id);
    return this.api.find(`read StatefulSet ${workload}`, () =>
      this.api.apps.readNamespacedStatefulSet({ name: workload, namespace: at.namespace }),
    );
  }

  private readPod(at: Located): Promise<V1Pod | null> {
    const { pod } = namesFor(at.id);
    return this.api.find(`read Pod ${pod}`, () => this.api.core.readNamespacedPod({ name: pod, namespace: at.namespace }));
  }

  async status(spec: EnvironmentSpec): Promise<RuntimeStatus> {
    assertEnvironmentId(spec.id);
    const at = await this.locate(spec);
    return at ? this.statusOf(at, specHash(spec)) : ABSENT;
  }

  /** `hash` (of the spec) rejects progress of another template version; null accepts any. */
  private async statusOf(at: Located, hash: string | null): Promise<RuntimeStatus> {
    const [workload, pod] = await Promise.all([this.readWorkload(at), this.readPod(at)]);
    if (!workload) {
      const names = namesFor(at.id);
      const [claim, config] = await Promise.all([
        this.api.find(`read PersistentVolumeClaim ${names.volume}`, () =>
          this.api.core.readNamespacedPersistentVolumeClaim({ name: names.volume, namespace: at.namespace }),
        ),
        this.api.find(`read ConfigMap ${names.workload}`, () =>
          this.api.core.readNamespacedConfigMap({ name: names.workload, namespace: at.namespace }),
        ),
      ]);
      if (!claim && !config && !pod) return ABSENT;
      return { state: 'stopped', message: 'incomplete: the StatefulSet is missing (a start creates it again)', installation: null };
    }
    const wanted = workload.spec?.replicas ?? 0;
    const view = viewPod(pod, wanted);
    const saved = this.savedProgress(workload, hash);
    if (view.state !== 'running') {
      const interrupted = view.state === 'stopped' && saved !== null && !saved.completed;
      const notes = saved ? installationNotes({ ...saved, interrupted, missingCommands: [] }) : [];
      return {
        state: view.state,
        message: joinNotes([view.state === 'failed' ? view.message : null, ...notes]),
        installation: toInstallation(saved, interrupted),
      };
    }
    let inside: Map<string, string>;
    try {
      inside = parseKeyValues((await this.run(at, ['sh', '-c', STATUS_SCRIPT])).text);
    } catch (error) {
      return {
        state: 'pending',
        message: `waiting for the container to answer: ${reasonOf(error)}`,
        installation: toInstallation(saved, false),
      };
    }
    let progress = parseProgress(inside.get('installation'));
    if (progress && hash !== null && progress.hash !== hash) progress = null;
    const missingCommands = (inside.get('missing') ?? '').split(' ').filter(Boolean);
    const notes = installationNotes({
      stepsDone: progress?.stepsDone ?? 0,
      stepsTotal: progress?.stepsTotal ?? 0,
      failedSteps: progress?.failedSteps ?? [],
      interrupted: false,
      missingCommands,
    });
    const installation = toInstallation(progress, false);
    const failure = inside.get('failure');
    if (failure) return { state: 'failed', message: joinNotes([`the workload cannot run: ${failure}`, ...notes]), installation };
    if (!inside.has('ready')) return { state: 'pending', message: joinNotes(notes), installation };
    return { state: 'running', message: joinNotes(notes), installation };
  }

  private savedProgress(workload: V1StatefulSet, hash: string | null): Progress | null {
    const raw = workload.metadata?.annotations?.[ANNOTATION_INSTALLATION];
    if (!raw) return null;
    try {
      const saved = JSON.parse(raw) as Progress & { hash?: string };
      if (hash !== null && saved.hash !== undefined && saved.hash !== hash) return null;
      return saved;
    } catch {
      return null;
    }
  }

  /** The entrypoint's progress file, for the annotation a stop leaves behind. */
  private async readProgress(at: Located): Promise<(Progress & { hash: string }) | null> {
    const inside = parseKeyValues((await this.run(at, ['sh', '-c', STATUS_SCRIPT])).text);
    return parseProgress(inside.get('installation'));
  }

  // ------------------------------------------------------------------------------------------
  // Watch: one pod watch per process while anyone listens

  watch(listener: (environmentId: string, status: RuntimeStatus) => void): Unsubscribe {
    this.listeners.add(listener);
    if (!this.watching) {
      this.watching = true;
      void this.watchLoop();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  private stopWatching(): void {
    this.watching = false;
    this.watchAbort?.abort();
    this.watchAbort = null;
    this.lastSeen.clear();
  }

  /**
   * List, then watch from the list's resourceVersion; a watch that ends is resumed from the last
   * version seen (bookmarks keep it fresh), and a 410 Gone (too old) lists again. After every list
   * each environment is looked at afresh, so a transition during a gap is never missed.
   */
  private async watchLoop(): Promise<void> {
    let resourceVersion: string | null = null;
    let failures = 0;
    let baseline = true;
    while (this.watching) {
      try {
        if (resourceVersion === null) {
          const list = await this.api.call('list pods', () =>
            this.config.namespaceMode === 'shared'
              ? this.api.core.listNamespacedPod({ namespace: this.config.namespace, labelSelector: MANAGED_SELECTOR })
              : this.api.core.listPodForAllNamespaces({ labelSelector: MANAGED_SELECTOR }),
          );
          resourceVersion = list.metadata?.resourceVersion ?? null;
          const seen = new Map<string, string>([...this.lastSeen.keys()].map((id) => [id, this.namespaceOf(id)]));
          for (const pod of list.items) {
            const id = pod.metadata?.labels?.[LABEL_ENVIRONMENT_ID];
            if (id && pod.metadata?.namespace) seen.set(id, this.remember(id, pod.metadata.namespace));
          }
          for (const [id, namespace] of seen) if (ENVIRONMENT_ID_PATTERN.test(id)) this.observe({ id, namespace }, !baseline);
          baseline = false;
        }
        const outcome = await this.watchOnce(resourceVersion);
        resourceVersion = outcome.expired ? null : outcome.resourceVersion;
        if (outcome.events > 0) failures = 0;
        if (outcome.expired) failures = 0;
        else failures += 1;
      } catch (error) {
        failures += 1;
        if (statusOf(error) === 410) resourceVersion = null;
        this.logger.warn(`Watching pods failed, retrying: ${reasonOf(error)}`);
      }
      if (!this.watching) return;
      await delay(Math.min(30_000, this.watchRetryMs * 2 ** Math.min(failures, 6)));
    }
  }

  private watchOnce(resourceVersion: string | null): Promise<{ resourceVersion: string | null; expired: boolean; events: number }> {
    return new Promise((resolve) => {
      let version = resourceVersion;
      let expired = false;
      let events = 0;
      const onEvent = (type: string, object: unknown): void => {
        events += 1;
        if (type === 'ERROR') {
          const code = (object as { code?: number }).code;
          if (code === 410) expired = true;
          return;
        }
        const pod = object as V1Pod;
        version = pod.metadata?.resourceVersion ?? version;
        if (type === 'BOOKMARK') return;
        const id = pod.metadata?.labels?.[LABEL_ENVIRONMENT_ID];
        const namespace = pod.metadata?.namespace;
        if (id && namespace && ENVIRONMENT_ID_PATTERN.test(id)) this.observe({ id, namespace: this.remember(id, namespace) }, true);
      };
      const done = (error: unknown): void => {
        if (statusOf(error) === 410 || (error as { statusCode?: number } | null)?.statusCode === 410) expired = true;
        resolve({ resourceVersion: version, expired, events });
      };
      this.api
        .watchPods(
          this.config.namespaceMode === 'shared' ? this.config.namespace : null,
          { labelSelector: MANAGED_SELECTOR, resourceVersion: version ?? undefined },
          onEvent,
          done,
        )
        .then((abort) => {
          if (!this.watching) abort.abort();
          else this.watchAbort = abort;
        })
        .catch((error: unknown) => done(error));
    });
  }

  /**
   * Looks at one environment and tells the watchers when its status changed. Observations run one
   * at a time, so an older status is never reported after a newer one.
   */
  /** The namespace an environment id was last seen in (per-user mode), else the configured one. */
  private namespaceOf(id: string): string {
    return this.namespaces.get(id) ?? this.config.namespace;
  }

  private observe(at: Located, announce: boolean): void {
    const { id } = at;
    this.observing = this.observing.then(async () => {
      if (this.listeners.size === 0) return;
      let status: RuntimeStatus;
      try {
        status = await this.statusOf(at, null);
      } catch (error) {
        this.logger.warn(`Could not read the status of environment ${id}: ${reasonOf(error)}`);
        return;
      }
      const key = JSON.stringify(status);
      const previous = this.lastSeen.get(id);
      this.lastSeen.set(id, key);
      if (status.state === 'absent') this.lastSeen.delete(id);
      if (previous === key || (!announce && previous === undefined)) return;
      for (const listener of this.listeners) listener(id, status);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Exec, logs, metrics

  /** argv as the environment's user: root containers (templates with system steps) drop to it with setpriv. */
  private commandFor(spec: EnvironmentSpec, argv: string[], env: Record<string, string> | undefined): string[] {
    const { user } = spec.template;
    const rootContainer = !(spec.template.runAsNonRoot && user.uid !== 0);
    const drop = rootContainer && user.uid !== 0 ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--'] : [];
    const extra = env ? Object.entries(env) : [];
    for (const [name] of extra) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new AppError(RuntimeError.InvalidVariableName, `Invalid environment variable name ${JSON.stringify(name)}`);
    }
    const withEnv = extra.length > 0 ? ['env', ...extra.map(([name, value]) => `${name}=${value}`), ...argv] : argv;
    return [...drop, ...withEnv];
  }

  async exec(spec: EnvironmentSpec, argv: string[], options: ExecOptions): Promise<ExecSession> {
    assertEnvironmentId(spec.id);
    if (argv.length === 0) throw new AppError(RuntimeError.EmptyCommand, 'exec needs a command');
    const { at, view } = await this.inspect(spec);
    if (!at || view.state !== 'running') {
      throw new AppError(RuntimeError.NotRunning, `Environment ${spec.id} is not running${view.message ? ` (${view.message})` : ''}`);
    }
    const command = this.commandFor(spec, argv, options.env);
    const session = await this.api.call(`exec in environment ${spec.id}`, () => this.open(at, command, options.tty));
    if (options.tty) session.resize(options.cols ?? 80, options.rows ?? 24);
    this.sessions.add(session);
    void session.exit.then(() => this.sessions.delete(session));
    return session;
  }

  private async open(at: Located, command: string[], tty: boolean): Promise<KubernetesExecSession> {
    let session: KubernetesExecSession | null = null;
    const early: [number, Buffer][] = [];
    const socket = await this.api.openExec(at.namespace, namesFor(at.id).pod, CONTAINER_NAME, command, tty, (channel, data) => {
      if (session) session.receive(channel, data);
      else early.push([channel, data]);
    });
    const created = new KubernetesExecSession(socket, tty, this.execKeepaliveMs);
    session = created;
    for (const [channel, data] of early) created.receive(channel, data);
    return created;
  }

  /** Runs a command to its end (no TTY, no input) and collects its output; exec errors are retried like API calls. */
  private async run(at: Located, command: string[]): Promise<{ text: string; code: number | null }> {
    const { id } = at;
    return this.api.call(`exec in environment ${id}`, async () => {
      const session = await this.open(at, command, false);
      session.stream.end();
      const chunks: Buffer[] = [];
      for await (const chunk of session.stream) chunks.push(chunk as Buffer);
      const exit = await session.exit;
      return { text: Buffer.concat(chunks).toString('utf8'), code: exit.code };
    });
  }

  /** The environment, when its container runs; null otherwise. */
  /** Where the environment is and what its pod says (one read of the StatefulSet and of the pod). */
  private async inspect(spec: EnvironmentSpec): Promise<{ at: Located | null; view: PodView }> {
    const at = await this.locate(spec);
    if (!at) return { at: null, view: { state: 'absent', message: null } };
    const [workload, pod] = await Promise.all([this.readWorkload(at), this.readPod(at)]);
    return { at, view: viewPod(pod, workload?.spec?.replicas ?? 0) };
  }

  private async runningPod(spec: EnvironmentSpec): Promise<Located | null> {
    const { at, view } = await this.inspect(spec);
    return view.state === 'running' ? at : null;
  }

  async logs(spec: EnvironmentSpec, query: LogQuery): Promise<LogPage> {
    assertEnvironmentId(spec.id);
    const at = await this.runningPod(spec);
    if (!at) return { lines: [], total: 0 };
    const pager = new LogPager(query);
    const { text } = await this.run(at, ['sh', '-c', LOG_SCRIPT]);
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const line of lines) pager.add(line.replace(/\r$/, ''));
    return pager.page();
  }

  followLogs(spec: EnvironmentSpec, onLine: (line: string) => void, backlog = 0): Unsubscribe {
    assertEnvironmentId(spec.id);
    let closed = false;
    let current: ExecSession | null = null;
    // The backlog comes from the same `tail` as the live lines (one ordered sequence); only the
    // first follow sends it, a follow that starts again after the pod came back starts at the end.
    let first = Math.max(0, Math.floor(backlog));
    const follow = async (): Promise<void> => {
      while (!closed) {
        try {
          const at = await this.runningPod(spec);
          if (at) {
            const session = await this.open(at, ['sh', '-c', FOLLOW_LOG_SCRIPT, 'follow-log', String(first)], false);
            first = 0;
            current = session;
            if (closed) break;
            const splitter = new LineSplitter((line) => {
              if (!closed) onLine(line);
            });
            session.stream.on('data', (chunk: Buffer) => splitter.write(chunk));
            await session.exit;
            splitter.end();
          }
        } catch (error) {
          this.logger.debug(`Following the log of ${spec.id}: ${reasonOf(error)}`);
        }
        if (!closed) await delay(2000);
      }
      await current?.kill();
    };
    void follow();
    return () => {
      closed = true;
      void current?.kill();
    };
  }

  async metrics(spec: EnvironmentSpec): Promise<RuntimeMetrics> {
    assertEnvironmentId(spec.id);
    const at = new Date();
    const empty: RuntimeMetrics = { cpuCores: null, memoryBytes: null, diskBytes: null, networkInBytes: null, networkOutBytes: null, at };
    const where = await this.runningPod(spec);
    if (!where) return empty;
    const values = parseKeyValues((await this.run(where, ['sh', '-c', METRICS_SCRIPT])).text);
    const number = (key: string): number | null => {
      const value = Number(values.get(key));
      return values.has(key) && Number.isFinite(value) ? value : null;
    };
    const usec = number('cpu_usec');
    let cpuCores: number | null = null;
    if (usec !== null) {
      const previous = this.cpuSamples.get(spec.id);
      if (previous && at.getTime() > previous.at && usec >= previous.usec) {
        cpuCores = (usec - previous.usec) / 1000 / (at.getTime() - previous.at);
      }
      this.cpuSamples.set(spec.id, { usec, at: at.getTime() });
    }
    return {
      cpuCores,
      memoryBytes: number('memory'),
      diskBytes: number('disk'),
      networkInBytes: number('net_in'),
      networkOutBytes: number('net_out'),
      at,
    };
  }

  async list(): Promise<string[]> {
    const labelSelector = MANAGED_SELECTOR;
    const shared = this.config.namespaceMode === 'shared';
    const namespace = this.config.namespace;
    const [workloads, claims, configs] = await Promise.all([
      this.api.call('list StatefulSets', () =>
        shared
          ? this.api.apps.listNamespacedStatefulSet({ namespace, labelSelector })
          : this.api.apps.listStatefulSetForAllNamespaces({ labelSelector }),
      ),
      this.api.call('list PersistentVolumeClaims', () =>
        shared
          ? this.api.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector })
          : this.api.core.listPersistentVolumeClaimForAllNamespaces({ labelSelector }),
      ),
      this.api.call('list ConfigMaps', () =>
        shared
          ? this.api.core.listNamespacedConfigMap({ namespace, labelSelector })
          : this.api.core.listConfigMapForAllNamespaces({ labelSelector }),
      ),
    ]);
    const ids = new Set<string>();
    for (const item of [...workloads.items, ...claims.items, ...configs.items]) {
      const id = item.metadata?.labels?.[LABEL_ENVIRONMENT_ID];
      if (!id || !ENVIRONMENT_ID_PATTERN.test(id)) continue;
      ids.add(id);
      if (item.metadata?.namespace) this.remember(id, item.metadata.namespace);
    }
    return [...ids].sort();
  }

  /** Stops watching and ends the exec sessions this instance opened (environments keep running). */
  async onApplicationShutdown(): Promise<void> {
    this.listeners.clear();
    this.stopWatching();
    await Promise.all([...this.sessions].map((session) => session.kill()));
    this.sessions.clear();
  }
}
