import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { DomainEvents } from '../common/events/domain-events.js';
import { MetricsService } from '../common/metrics/metrics.service.js';
import { PHASES } from './environment.js';
import { EnvironmentsRepository } from './environments.repository.js';

/** Counts older than this are read again at the next scrape (changes made by other replicas). */
const COUNTS_MAX_AGE_MS = 30_000;

/**
 * `devpocket_environments{phase}`: environments by lifecycle phase, from the database (every
 * replica reports the same figures). Counted at scrape time by one aggregation, and reused until a
 * phase changes in this process or the counts are 30 s old; every phase is reported, 0 included.
 * When the database does not answer, the last counts are served (the scrape still succeeds).
 */
@Injectable()
export class EnvironmentMetrics implements OnModuleInit {
  private readonly logger = new Logger('Environments');
  private counts = new Map<string, number>();
  private countedAt = Number.NEGATIVE_INFINITY;
  /** Bumped by every phase change: a count that started before one is not taken as fresh. */
  private generation = 0;
  private counting: Promise<void> | null = null;

  constructor(
    metrics: MetricsService,
    private readonly environments: EnvironmentsRepository,
    private readonly events: DomainEvents,
  ) {
    const refresh = (): Promise<Map<string, number>> => this.refresh();
    new Gauge({
      name: 'devpocket_environments',
      help: 'Environments by lifecycle phase (from the database)',
      labelNames: ['phase'] as const,
      registers: [metrics.registry],
      async collect() {
        const counts = await refresh();
        for (const phase of PHASES) this.set({ phase }, counts.get(phase) ?? 0);
      },
    });
  }

  onModuleInit(): void {
    // A phase changed on any replica: the counts are stale here too.
    this.events.on(
      'environment.phase_changed',
      () => {
        this.generation += 1;
        this.countedAt = Number.NEGATIVE_INFINITY;
      },
      { everyReplica: true },
    );
  }

  private async refresh(): Promise<Map<string, number>> {
    if (Date.now() - this.countedAt >= COUNTS_MAX_AGE_MS) {
      const generation = this.generation;
      this.counting ??= this.environments
        .countByPhase()
        .then((counts) => {
          this.counts = counts;
          if (generation === this.generation) this.countedAt = Date.now();
        })
        .catch((error: unknown) => {
          this.logger.debug(`Counting environments by phase failed: ${error instanceof Error ? error.message : String(error)}`);
        })
        .finally(() => (this.counting = null));
      await this.counting;
    }
    return this.counts;
  }
}
