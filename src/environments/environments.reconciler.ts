import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { Interval } from '@nestjs/schedule';
import { Clock } from '../common/clock/clock.js';
import { runtimeConfig } from '../config/namespaces/runtime.config.js';
import { RuntimeProvider, RuntimeStatus, Unsubscribe } from '../runtime/runtime.provider.js';
import type { Plan } from '../users/plans.js';
import { EnvironmentOperations, STALE_OPERATION_MS } from './environment-operations.js';
import { EnvironmentQuota } from './environment-quota.js';
import { EnvironmentSpecs } from './environment-specs.js';
import { Environment } from './environment.js';
import { EnvironmentsRepository } from './environments.repository.js';
import { specForOrphan } from './orphan-spec.js';

export interface ReconcileReport {
  resumed: number;
  repaired: number;
  /** Environments of this installation whose runtime resources carried no installation mark, now marked (see `adopt`). */
  adopted: number;
  orphansDestroyed: number;
  purged: number;
  quotasRepaired: number;
}

/**
 * Keeps the recorded state and the runtime's real state in agreement: at boot and every minute it
 * resumes operations whose server died (stale heartbeat), repairs environments whose workload
 * stopped or vanished behind our back, destroys runtime resources nobody owns, purges terminated
 * environments after the retention period, and stops environments idle for their plan's timeout.
 */
@Injectable()
export class EnvironmentsReconciler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Reconciler');
  private unsubscribe: Unsubscribe | null = null;
  private running: Promise<ReconcileReport> | null = null;
  /** Users whose quota counter disagreed with their environments at the previous pass. */
  private suspectQuotas = new Set<string>();
  /** Unmarked runtime resources of no environment of ours, already reported (once per process). */
  private readonly foreignReported = new Set<string>();

  constructor(
    private readonly environments: EnvironmentsRepository,
    private readonly operations: EnvironmentOperations,
    private readonly specs: EnvironmentSpecs,
    private readonly quota: EnvironmentQuota,
    private readonly runtime: RuntimeProvider,
    @Inject(runtimeConfig.KEY) private readonly config: ConfigType<typeof runtimeConfig>,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    this.unsubscribe = this.runtime.watch((id, status) => void this.onRuntimeChange(id, status));
    void this.tick();
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  @Interval('environments-reconcile', 60_000)
  async tick(): Promise<void> {
    try {
      await this.reconcile();
      await this.stopIdle();
    } catch (error) {
      this.logger.warn(`Reconciliation failed, will retry: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** One full pass; concurrent callers share it. */
  reconcile(): Promise<ReconcileReport> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  private async pass(): Promise<ReconcileReport> {
    const report: ReconcileReport = { resumed: 0, repaired: 0, adopted: 0, orphansDestroyed: 0, purged: 0, quotasRepaired: 0 };
    const now = this.clock.now();

    for (const environment of await this.environments.staleOperations(new Date(now.getTime() - STALE_OPERATION_MS))) {
      const stale = environment.operation;
      if (!stale) continue;
      const claimed = await this.environments.claimStaleOperation(environment.id, stale.id, {
        id: randomUUID(),
        kind: stale.kind,
        startedAt: now,
        heartbeatAt: now,
      });
      if (!claimed) continue;
      this.logger.warn(`Resuming the ${stale.kind} of environment ${environment.id}, abandoned by a stopped server`);
      this.operations.execute(claimed);
      report.resumed += 1;
    }

    report.resumed += await this.operations.resumeQueued(new Date(now.getTime() - STALE_OPERATION_MS));

    for (const environment of await this.environments.listInPhases(['running', 'stopped'])) {
      if (environment.operation) continue;
      try {
        const status = await this.runtime.status(await this.specs.specFor(environment));
        if (await this.repair(environment, status)) report.repaired += 1;
      } catch (error) {
        this.logger.warn(`Could not check environment ${environment.id}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }

    report.adopted = await this.adopt();
    // Only this installation's resources: another installation's on the same cluster are never orphans here.
    const held = await this.runtime.list();
    const known = await this.environments.existingIds(held);
    for (const id of held.filter((candidate) => !known.has(candidate))) {
      const record = await this.environments.findById(id);
      if (record && record.phase !== 'terminated') continue;
      if (record) {
        await this.runtime.destroy(await this.specs.specFor(record));
      } else {
        await this.destroyOrphan(id);
      }
      report.orphansDestroyed += 1;
    }

    report.purged = await this.environments.deleteTerminatedBefore(new Date(now.getTime() - this.config.retentionDays * 86_400_000));
    report.quotasRepaired = await this.repairQuotas();
    return report;
  }

  /**
   * A slot can leak if a server dies between destroying an environment and giving its slot back. A
   * counter that disagrees with the environments on two passes in a row (so not merely a creation
   * in flight) is recounted.
   */
  private async repairQuotas(): Promise<number> {
    const disagreeing = new Set<string>();
    for (const { userId, counted, live } of await this.environments.quotaDisagreements()) {
      if (counted !== live) disagreeing.add(userId);
    }
    let repaired = 0;
    for (const userId of disagreeing) {
      if (!this.suspectQuotas.has(userId)) continue;
      await this.environments.recountSlots(userId);
      this.logger.warn(`Recounted the environment quota of user ${userId}`);
      repaired += 1;
    }
    this.suspectQuotas = new Set([...disagreeing].filter((userId) => !this.suspectQuotas.has(userId)));
    return repaired;
  }

  /**
   * Runtime resources made before installations were told apart carry no installation mark, so
   * `list()` never shows them and they are never destroyed as orphans. Those of an environment this
   * installation has a record of (any phase) are marked as its own, and from then on managed like
   * any other (a terminated one's are destroyed by the orphan pass below); the others, maybe
   * another installation's, are left alone and reported once.
   */
  private async adopt(): Promise<number> {
    let adopted = 0;
    for (const id of await this.runtime.listUnclaimed()) {
      const record = await this.environments.findById(id);
      if (!record) {
        if (!this.foreignReported.has(id)) {
          this.foreignReported.add(id);
          this.logger.warn(`Environment ${id} has runtime resources without an installation mark and no record here: left alone`);
        }
        continue;
      }
      try {
        const spec = (await this.specs.teardownSpecFor(record)) ?? { ...specForOrphan(id), userId: record.userId };
        await this.runtime.adopt(spec);
        this.logger.log(`Adopted the runtime resources of environment ${id} (made before installations were told apart)`);
        adopted += 1;
      } catch (error) {
        this.logger.warn(`Could not adopt environment ${id}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return adopted;
  }

  /** No record at all: the runtime only needs the id to remove what it holds. */
  private async destroyOrphan(id: string): Promise<void> {
    await this.runtime.destroy(specForOrphan(id));
  }

  private async onRuntimeChange(id: string, status: RuntimeStatus): Promise<void> {
    try {
      const environment = await this.environments.findById(id);
      if (!environment || environment.operation) return;
      if (environment.phase === 'running' && status.state === 'running') {
        await this.environments.updateInstallation(id, status.installation, status.message);
        await this.operations.announceChange(environment);
        return;
      }
      await this.repair(environment, status);
    } catch (error) {
      this.logger.warn(`Could not apply a runtime change of ${id}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Brings one settled environment in line with the runtime; true when something changed. */
  private async repair(environment: Environment, status: RuntimeStatus): Promise<boolean> {
    const { phase } = environment;
    if (phase === 'running' && status.state === 'stopped') {
      return this.move(environment, 'running', {
        phase: 'stopped',
        statusMessage: 'The environment stopped outside DevPocket (its processes ended)',
      });
    }
    if ((phase === 'running' || phase === 'stopped') && status.state === 'absent') {
      return this.move(environment, phase, {
        phase: 'error',
        statusMessage: "The environment's workload and storage vanished; delete it, or start it to recreate it empty",
      });
    }
    if (phase === 'running' && status.state === 'failed') {
      return this.move(environment, 'running', { phase: 'error', statusMessage: status.message ?? 'The workload failed' });
    }
    if (phase === 'stopped' && status.state === 'running') {
      return this.move(environment, 'stopped', { phase: 'running', statusMessage: null, startedAt: this.clock.now() });
    }
    if (phase === 'running' && status.state === 'running' && status.message !== environment.statusMessage) {
      // What a runtime notices inside a running environment without an event (e.g. a process killed for memory).
      await this.environments.updateInstallation(environment.id, status.installation ?? environment.installation, status.message);
      await this.operations.announceChange(environment);
    }
    return false;
  }

  private async move(
    environment: Environment,
    from: 'running' | 'stopped',
    changes: Parameters<EnvironmentsRepository['transition']>[2],
  ): Promise<boolean> {
    const moved = await this.environments.transition(environment.id, [from], changes);
    if (moved) await this.operations.announce(moved);
    if (moved) this.logger.warn(`Environment ${environment.id}: ${from} → ${moved.phase} (${moved.statusMessage ?? 'runtime state'})`);
    return moved !== null;
  }

  /** Stops running environments whose owner's plan idle timeout has passed without terminal activity. */
  async stopIdle(): Promise<number> {
    const now = this.clock.nowMs();
    let stopped = 0;
    const plans = new Map<string, Plan | null>();
    for (const environment of await this.environments.listInPhases(['running'])) {
      if (environment.operation) continue;
      if (!plans.has(environment.userId)) plans.set(environment.userId, await this.quota.ownerPlan(environment.userId));
      const plan = plans.get(environment.userId);
      if (!plan) continue;
      const activeAt = Math.max(
        environment.lastAccessed?.getTime() ?? 0,
        environment.startedAt?.getTime() ?? 0,
        environment.createdAt.getTime(),
      );
      if (now - activeAt < plan.idleTimeoutMinutes * 60_000) continue;
      if (await this.operations.stopForIdleness(environment, plan.idleTimeoutMinutes)) stopped += 1;
    }
    return stopped;
  }
}
