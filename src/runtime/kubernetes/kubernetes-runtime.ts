import { OnApplicationShutdown } from '@nestjs/common';
import { AppError } from '../../common/errors/app-error.js';
import type { KubernetesConfig } from '../../config/namespaces/runtime.config.js';
import type { Template } from '../../templates/template.js';
import { specHash } from '../installation.js';
import {
  assertEnvironmentId,
  RuntimeProvider,
  type EnvironmentSpec,
  type ExecOptions,
  type ExecSession,
  type LogPage,
  type LogQuery,
  type RuntimeMetrics,
  type RuntimeReadiness,
  type PreviewTarget,
  type RuntimeStatus,
  type StorageRefusal,
  type TerminalAttachment,
  type TerminalSize,
  type Unsubscribe,
} from '../runtime.provider.js';
import { RuntimeError } from '../runtime.errors.js';
import type { StatusListener } from '../status-watch.js';
import { ABSENT, KubernetesStatus } from './environment-status.js';
import { KubernetesApi, reasonOf } from './kubernetes-api.js';
import { EXEC_KEEPALIVE_MS, EXEC_PONG_TIMEOUT_MS } from './kubernetes-exec.js';
import { KubernetesLifecycle } from './lifecycle.js';
import { EnvironmentObjects } from './objects.js';
import { DEFAULT_INSTALLATION_ID, Ownership } from './ownership.js';
import { NamespacePlacement } from './placement.js';
import { PodExec } from './pod-exec.js';
import { PodLogs } from './pod-logs.js';
import { PodMetrics } from './pod-metrics.js';
import { podSecurityRefusal } from './pod-security.js';
import { PodWatch } from './pod-watch.js';
import { StoppedLogs } from './stopped-log.js';

export interface KubernetesRuntimeOptions {
  /** How long stop() waits for the pod to be gone (default 90 s). */
  stopTimeoutMs?: number;
  /** How long destroy() waits for every object to be gone (default 120 s). */
  destroyTimeoutMs?: number;
  /** Delay before a dropped pod watch is re-opened; doubles up to 30 s (default 500 ms). */
  watchRetryMs?: number;
  /** WebSocket ping interval of exec sessions (default EXEC_KEEPALIVE_MS, 15 s). */
  execKeepaliveMs?: number;
  /** How long after a ping an exec connection without any answer is taken for dead (default EXEC_PONG_TIMEOUT_MS, 10 s). */
  execPongTimeoutMs?: number;
  /**
   * The installation whose objects these are (src/settings/installation.ts): every object is
   * labelled with it, and only objects with it are listed and watched. Servers always pass theirs;
   * runtimes built by hand without one (tests, benchmarks) share one per process (DEFAULT_INSTALLATION_ID).
   */
  installationId?: string;
}

/**
 * The Kubernetes runtime (RUNTIME=kubernetes; see docs/kubernetes.md). Each environment is a
 * ConfigMap (entrypoint, tmux.conf, startup steps), a PersistentVolumeClaim (the home), a
 * StatefulSet of one replica (scaled to 0 to stop), and a ClusterIP Service for the template's
 * ports, all named `dp-<id>` in one namespace. Every process (terminals included) is a
 * Kubernetes exec, so the API servers need no access to the nodes.
 *
 * This class is the RuntimeProvider: it checks ids and delegates to the collaborators below.
 *
 * - NamespacePlacement (placement.ts): which namespace an environment's objects are in (per-user:
 *   created with a RoleBinding of the runtime's role)
 * - EnvironmentObjects (objects.ts, home-volume.ts): applying (creating, or bringing up to date),
 *   scaling, deleting, reading and listing the objects, each labelled with the installation
 *   (ownership.ts)
 * - KubernetesLifecycle (lifecycle.ts): provision, start, stop, destroy, with their waits
 * - KubernetesStatus (environment-status.ts) and PodWatch (pod-watch.ts): status() and watch()
 * - PodExec (pod-exec.ts): exec sessions, the terminal attachment, the runtime's own scripts
 * - PodLogs (pod-logs.ts), PodMetrics (pod-metrics.ts): logs, followLogs, metrics; StoppedLogs
 *   (stopped-log.ts): the log a stop keeps, served while no pod runs
 */
export class KubernetesRuntime extends RuntimeProvider implements OnApplicationShutdown {
  readonly kind = 'kubernetes' as const;
  private readonly objects: EnvironmentObjects;
  private readonly placement: NamespacePlacement;
  private readonly lifecycle: KubernetesLifecycle;
  private readonly statuses: KubernetesStatus;
  private readonly watcher: PodWatch;
  private readonly execs: PodExec;
  private readonly logFiles: PodLogs;
  private readonly sampler: PodMetrics;

  constructor(
    private readonly config: KubernetesConfig,
    readonly api: KubernetesApi = new KubernetesApi(config),
    options: KubernetesRuntimeOptions = {},
  ) {
    super();
    const ownership = new Ownership(options.installationId ?? DEFAULT_INSTALLATION_ID);
    this.placement = new NamespacePlacement(config, api, ownership);
    this.objects = new EnvironmentObjects(config, api, this.placement, ownership);
    this.execs = new PodExec(api, this.objects, {
      intervalMs: options.execKeepaliveMs ?? EXEC_KEEPALIVE_MS,
      pongTimeoutMs: options.execPongTimeoutMs ?? EXEC_PONG_TIMEOUT_MS,
    });
    this.statuses = new KubernetesStatus(this.objects, this.execs);
    const stoppedLogs = new StoppedLogs(api, this.execs, ownership);
    this.lifecycle = new KubernetesLifecycle(
      this.placement,
      this.objects,
      this.statuses,
      { stopTimeoutMs: options.stopTimeoutMs ?? 90_000, destroyTimeoutMs: options.destroyTimeoutMs ?? 120_000 },
      stoppedLogs,
    );
    this.watcher = new PodWatch(api, this.placement, this.statuses, options.watchRetryMs ?? 500, ownership);
    this.logFiles = new PodLogs(this.objects, this.execs, stoppedLogs);
    this.sampler = new PodMetrics(api, this.objects, this.execs);
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  async provision(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    this.assertAllowed(spec);
    await this.lifecycle.provision(spec);
  }

  async start(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    this.assertAllowed(spec);
    await this.lifecycle.start(spec);
  }

  /** A root template where the namespaces enforce Pod Security `restricted` (pod-security.ts): its pod would be refused. */
  templateRefusal(template: Template): string | null {
    return podSecurityRefusal(template, this.config.podSecurityLevel);
  }

  private assertAllowed(spec: EnvironmentSpec): void {
    const refusal = this.templateRefusal(spec.template);
    if (refusal !== null) throw new AppError(RuntimeError.TemplateNotAllowed, `Environment ${spec.id} cannot run: ${refusal}`);
  }

  async stop(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    await this.lifecycle.stop(spec);
  }

  async destroy(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    await this.lifecycle.destroy(spec);
    this.sampler.forget(spec.id);
  }

  // ------------------------------------------------------------------------------------------
  // Status and watch

  async status(spec: EnvironmentSpec): Promise<RuntimeStatus> {
    assertEnvironmentId(spec.id);
    const at = await this.placement.locate(spec);
    return at ? this.statuses.of(at, specHash(spec)) : ABSENT;
  }

  /** The pod's own address (the Service's ClusterIP needs kube-proxy, which not every cluster has); null while it has none. */
  async previewTarget(spec: EnvironmentSpec, port: number): Promise<PreviewTarget | null> {
    assertEnvironmentId(spec.id);
    const at = await this.placement.locate(spec);
    const pod = at ? await this.objects.readPod(at) : null;
    const ip = pod?.status?.podIP;
    return pod?.status?.phase === 'Running' && ip ? { host: ip, port } : null;
  }

  watch(listener: StatusListener): Unsubscribe {
    return this.watcher.subscribe(listener);
  }

  // ------------------------------------------------------------------------------------------
  // Exec and the terminal

  async exec(spec: EnvironmentSpec, argv: string[], options: ExecOptions): Promise<ExecSession> {
    assertEnvironmentId(spec.id);
    return this.execs.exec(spec, argv, options);
  }

  async attachTerminal(spec: EnvironmentSpec, size: TerminalSize): Promise<TerminalAttachment> {
    assertEnvironmentId(spec.id);
    return this.execs.attachTerminal(spec, size);
  }

  // ------------------------------------------------------------------------------------------
  // Logs, metrics, listing

  async logs(spec: EnvironmentSpec, query: LogQuery): Promise<LogPage> {
    assertEnvironmentId(spec.id);
    return this.logFiles.page(spec, query);
  }

  followLogs(spec: EnvironmentSpec, onLine: (line: string) => void, backlog = 0): Unsubscribe {
    assertEnvironmentId(spec.id);
    return this.logFiles.follow(spec, onLine, backlog);
  }

  async metrics(spec: EnvironmentSpec): Promise<RuntimeMetrics> {
    assertEnvironmentId(spec.id);
    return this.sampler.sample(spec);
  }

  /** Every environment with a StatefulSet, PVC or ConfigMap labelled as this installation's (for the reconciler). */
  list(): Promise<string[]> {
    return this.objects.listIds();
  }

  /** Every environment with a StatefulSet, PVC or ConfigMap of DevPocket's that carries no installation label (made before there were any). */
  override listUnclaimed(): Promise<string[]> {
    return this.objects.listUnclaimed();
  }

  /** Labels an environment's objects as this installation's (per-user mode: and binds the runtime's role in its namespace). */
  override async adopt(spec: EnvironmentSpec): Promise<void> {
    assertEnvironmentId(spec.id);
    await this.lifecycle.adopt(spec);
  }

  /** A smaller home volume, or a larger one its StorageClass cannot expand, is refused before the next start (home-volume.ts). */
  override async checkStorage(spec: EnvironmentSpec, storage: string): Promise<StorageRefusal | null> {
    assertEnvironmentId(spec.id);
    return this.objects.checkStorage(spec, storage);
  }

  /** The API server answers `GET /version` with this runtime's credentials, within `timeoutMs` (one attempt). */
  async ready(timeoutMs: number): Promise<RuntimeReadiness> {
    try {
      return { ready: true, detail: `Kubernetes API ${await this.api.serverVersion(timeoutMs)}` };
    } catch (error) {
      return { ready: false, detail: `the Kubernetes API did not answer: ${reasonOf(error)}` };
    }
  }

  /** Stops watching and ends the exec sessions this instance opened (environments keep running). */
  async onApplicationShutdown(): Promise<void> {
    this.watcher.close();
    await this.execs.killAll();
  }
}
