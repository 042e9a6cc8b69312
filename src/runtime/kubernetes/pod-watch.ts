import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { V1Pod } from '@kubernetes/client-node';
import { ENVIRONMENT_ID_PATTERN, type Unsubscribe } from '../runtime.provider.js';
import { StatusListener, StatusWatch } from '../status-watch.js';
import { reasonOf, statusOf, type KubernetesApi } from './kubernetes-api.js';
import type { KubernetesStatus } from './environment-status.js';
import { LABEL_ENVIRONMENT_ID } from './manifests.js';
import type { Ownership } from './ownership.js';
import type { Located, NamespacePlacement } from './placement.js';

/**
 * `watch()` of the Kubernetes runtime: one pod watch per process while anyone listens. Lists the
 * pods of this installation (the `managed-by` and installation labels, ownership.ts), then watches
 * from the list's resourceVersion with bookmarks; a watch that ends is resumed from the last
 * version seen (backoff from `retryMs` doubling to 30 s), and a 410 Gone (too old) lists again. After every list each environment is looked at
 * afresh, so a transition during a gap is never missed. Every pod event leads to a full status.
 */
export class PodWatch {
  private readonly logger = new Logger('KubernetesRuntime');
  private readonly watch: StatusWatch;
  private watching = false;
  private abort: AbortController | null = null;

  constructor(
    private readonly api: KubernetesApi,
    private readonly placement: NamespacePlacement,
    private readonly status: KubernetesStatus,
    private readonly retryMs: number,
    private readonly ownership: Ownership,
  ) {
    this.watch = new StatusWatch(this.logger, { start: () => this.start(), stop: () => this.stop() }, { reportUnseenAbsent: true });
  }

  subscribe(listener: StatusListener): Unsubscribe {
    return this.watch.subscribe(listener);
  }

  close(): void {
    this.watch.close();
  }

  private start(): void {
    if (this.watching) return;
    this.watching = true;
    void this.loop();
  }

  private stop(): void {
    this.watching = false;
    this.abort?.abort();
    this.abort = null;
  }

  /** Looks at one environment (a full status, any template version) and reports a change; a failed read is logged and skipped. */
  private observe(at: Located, announce: boolean): void {
    void this.watch.observe(
      at.id,
      async () => {
        try {
          return await this.status.of(at, null);
        } catch (error) {
          this.logger.warn(`Could not read the status of environment ${at.id}: ${reasonOf(error)}`);
          return null;
        }
      },
      announce,
    );
  }

  private async loop(): Promise<void> {
    let resourceVersion: string | null = null;
    let failures = 0;
    let baseline = true;
    const scope = this.placement.scope;
    while (this.watching) {
      try {
        if (resourceVersion === null) {
          const list = await this.api.call('list pods', () =>
            scope !== null
              ? this.api.core.listNamespacedPod({ namespace: scope, labelSelector: this.ownership.selector })
              : this.api.core.listPodForAllNamespaces({ labelSelector: this.ownership.selector }),
          );
          resourceVersion = list.metadata?.resourceVersion ?? null;
          const seen = new Map<string, string>(this.watch.seenIds().map((id) => [id, this.placement.namespaceOf(id)]));
          for (const pod of list.items) {
            const id = pod.metadata?.labels?.[LABEL_ENVIRONMENT_ID];
            if (id && pod.metadata?.namespace) seen.set(id, this.placement.remember(id, pod.metadata.namespace));
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
      await delay(Math.min(30_000, this.retryMs * 2 ** Math.min(failures, 6)));
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
        if (id && namespace && ENVIRONMENT_ID_PATTERN.test(id))
          this.observe({ id, namespace: this.placement.remember(id, namespace) }, true);
      };
      const done = (error: unknown): void => {
        if (statusOf(error) === 410 || (error as { statusCode?: number } | null)?.statusCode === 410) expired = true;
        resolve({ resourceVersion: version, expired, events });
      };
      this.api
        .watchPods(this.placement.scope, { labelSelector: this.ownership.selector, resourceVersion: version ?? undefined }, onEvent, done)
        .then((abort) => {
          if (!this.watching) abort.abort();
          else this.abort = abort;
        })
        .catch((error: unknown) => done(error));
    });
  }
}
