import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Principal } from '../common/http/principal.js';
import { Clock } from '../common/clock/clock.js';
import { AppError } from '../common/errors/app-error.js';
import { CommonError } from '../common/errors/error-code.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { EnvironmentSpec, LogPage, RuntimeMetrics, RuntimeProvider } from '../runtime/runtime.provider.js';
import { cpuMillicores, quantityBytes } from '../templates/template-rules.js';
import { TemplatesService } from '../templates/templates.service.js';
import type { Plan } from '../users/plans.js';
import { CreateEnvironmentDto, UpdateEnvironmentDto } from './dto/environment.dto.js';
import { EnvironmentOperations, environmentNotFound, invalidTransition } from './environment-operations.js';
import { EnvironmentQuota } from './environment-quota.js';
import { EnvironmentSpecs } from './environment-specs.js';
import { Environment, slugify } from './environment.js';
import { EnvironmentListCache, type ListedEnvironment } from './environment-list-cache.js';
import { EnvironmentsRepository } from './environments.repository.js';

/** Terminal activity is written at most this often per environment. */
const TOUCH_INTERVAL_MS = 60_000;

function percent(value: number | null, limit: number | null): number | null {
  if (value === null || limit === null || limit <= 0) return null;
  return Math.round((value / limit) * 1000) / 10;
}

/**
 * What the controller, the gateways and the terminal use of environments: queries, creation and
 * settings, the lifecycle requests, terminal activity and account deletion. The work itself is in
 * three parts: `EnvironmentOperations` (transitions, queued actions, background operations),
 * `EnvironmentQuota` (plan limits and resources) and `EnvironmentSpecs` (what the runtime is given).
 */
@Injectable()
export class EnvironmentsService implements OnModuleInit {
  private readonly logger = new Logger('Environments');
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly environments: EnvironmentsRepository,
    private readonly lists: EnvironmentListCache,
    private readonly operations: EnvironmentOperations,
    private readonly quota: EnvironmentQuota,
    private readonly specs: EnvironmentSpecs,
    private readonly templates: TemplatesService,
    private readonly runtime: RuntimeProvider,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    this.events.on('user.deleting', ({ userId }) => this.destroyAllForUser(userId));
  }

  // ---- queries ----------------------------------------------------------------------------------

  /** The caller's environments, newest first: from this process's list cache once read (`EnvironmentListCache`). */
  list(principal: Principal): Promise<readonly ListedEnvironment[]> {
    return this.lists.listForUser(principal.user.id);
  }

  async get(principal: Principal, id: string): Promise<Environment> {
    return this.refreshInstallation(await this.getOwned(principal, id));
  }

  async getOwned(principal: Principal, id: string): Promise<Environment> {
    const environment = await this.environments.findOwned(id, principal.user.id);
    if (!environment) throw environmentNotFound();
    return environment;
  }

  /** For running environments, the runtime's view of the startup script is fresher than ours. */
  private async refreshInstallation(environment: Environment): Promise<Environment> {
    if (environment.phase !== 'running' || environment.installation?.completed) return environment;
    try {
      const status = await this.runtime.status(await this.specs.specFor(environment));
      const message = status.message ?? environment.statusMessage;
      if (status.installation && JSON.stringify(status.installation) !== JSON.stringify(environment.installation)) {
        await this.environments.updateInstallation(environment.id, status.installation, message);
        await this.operations.announceChange(environment);
        return { ...environment, installation: status.installation, statusMessage: message };
      }
    } catch (error) {
      this.logger.warn(`Could not read the runtime status of ${environment.id}: ${error instanceof Error ? error.message : String(error)}`);
    }
    return environment;
  }

  async logs(principal: Principal, id: string, lines: number, since?: Date): Promise<LogPage> {
    const environment = await this.getOwned(principal, id);
    if (environment.phase === 'terminated') return { lines: [], total: 0 };
    return this.runtime.logs(await this.specs.specFor(environment), { lines, since });
  }

  followLogs(spec: EnvironmentSpec, onLine: (line: string) => void, backlog: number): () => void {
    return this.runtime.followLogs(spec, onLine, backlog);
  }

  async metrics(
    principal: Principal,
    id: string,
  ): Promise<RuntimeMetrics & { cpuPercent: number | null; memoryPercent: number | null; diskPercent: number | null }> {
    const environment = await this.getOwned(principal, id);
    const empty: RuntimeMetrics = {
      cpuCores: null,
      memoryBytes: null,
      diskBytes: null,
      networkInBytes: null,
      networkOutBytes: null,
      at: this.clock.now(),
    };
    const metrics = environment.phase === 'terminated' ? empty : await this.runtime.metrics(await this.specs.specFor(environment));
    const cpuLimit = cpuMillicores(environment.resources.cpu);
    return {
      ...metrics,
      cpuPercent: percent(metrics.cpuCores, cpuLimit === null ? null : cpuLimit / 1000),
      memoryPercent: percent(metrics.memoryBytes, quantityBytes(environment.resources.memory)),
      diskPercent: percent(metrics.diskBytes, quantityBytes(environment.resources.storage)),
    };
  }

  /** Whether the environment's record says `running` (the terminal asks when it lost its upstream). */
  async isRunning(id: string): Promise<boolean> {
    return (await this.environments.findById(id))?.phase === 'running';
  }

  /** The runtime's view of an environment: its record joined with its template (409 when the template is gone). */
  specFor(environment: Environment): Promise<EnvironmentSpec> {
    return this.specs.specFor(environment);
  }

  // ---- creation and settings --------------------------------------------------------------------

  async create(principal: Principal, dto: CreateEnvironmentDto): Promise<Environment> {
    const templateRef = dto.template ?? dto.template_id;
    if (!templateRef) {
      throw new AppError(CommonError.ValidationFailed, 'template is required: the name of a template, e.g. "python"', {
        errors: [{ field: 'template', message: 'template is required', code: 'isDefined' }],
      });
    }
    const template = await this.templates.findForNewEnvironment(templateRef);
    // Like a deprecated template: refused before anything is reserved (422 on the template field).
    const refusal = this.runtime.templateRefusal(template);
    if (refusal !== null) {
      throw new AppError(CommonError.ValidationFailed, refusal, {
        errors: [{ field: 'template', message: refusal, code: 'template_not_allowed' }],
      });
    }
    const plan = this.quota.planOf(principal.user.plan);
    const resources = this.quota.resolve(
      dto.resources ?? dto.resource_limits ?? null,
      plan,
      dto.resources ? 'resources' : 'resource_limits',
    );
    const environmentVariables = { ...(dto.environment_variables ?? {}) };

    await this.quota.reserveSlot(principal.user.id, plan);
    let environment: Environment;
    try {
      environment = await this.environments.create({
        userId: principal.user.id,
        name: dto.name.trim(),
        slug: slugify(dto.name),
        templateId: template.id,
        templateName: template.name,
        resources,
        environmentVariables,
        operation: this.operations.newOperation('provision'),
      });
    } catch (error) {
      await this.quota.releaseSlot(principal.user.id);
      throw error;
    }
    await this.templates.incrementUsage(template.id);
    await this.operations.announceChange(environment, 'created');
    this.operations.execute(environment);
    return environment;
  }

  async update(principal: Principal, id: string, dto: UpdateEnvironmentDto): Promise<Environment> {
    const environment = await this.getOwned(principal, id);
    const requested = dto.resources ?? dto.resource_limits ?? null;
    const resources = requested
      ? this.quota.resolveChange(
          environment.resources,
          requested,
          this.quota.planOf(principal.user.plan),
          dto.resources ? 'resources' : 'resource_limits',
        )
      : undefined;
    if (resources && resources.storage !== environment.resources.storage) {
      await this.assertStorageFits(environment, resources.storage, dto.resources ? 'resources' : 'resource_limits');
    }
    const updated = await this.environments.updateSettings(id, principal.user.id, {
      name: dto.name ? dto.name.trim() : undefined,
      slug: dto.name ? slugify(dto.name) : undefined,
      environmentVariables: dto.environment_variables ?? undefined,
      resources,
      ports: dto.ports ?? undefined,
    });
    if (!updated) throw invalidTransition(environment, 'update');
    await this.operations.announceChange(updated);
    return updated;
  }

  /**
   * A new storage size the runtime can already tell it cannot give at the next start (a Kubernetes
   * home volume cannot shrink, nor grow where its StorageClass does not allow expansion): 422 on
   * `<field>.storage`. When it cannot tell, the start decides (and fails naming the reason).
   */
  private async assertStorageFits(environment: Environment, storage: string, field: string): Promise<void> {
    const spec = await this.specs.teardownSpecFor(environment);
    const refusal = spec ? await this.runtime.checkStorage(spec, storage).catch(() => null) : null;
    if (!refusal) return;
    throw new AppError(CommonError.ValidationFailed, refusal.message, {
      errors: [{ field: `${field}.storage`, message: refusal.message, code: refusal.code }],
    });
  }

  // ---- lifecycle (EnvironmentOperations) ----------------------------------------------------------

  start(principal: Principal, id: string): Promise<Environment> {
    return this.operations.transitionOrQueue(principal.user.id, id, 'start');
  }

  stop(principal: Principal, id: string): Promise<Environment> {
    return this.operations.transitionOrQueue(principal.user.id, id, 'stop');
  }

  restart(principal: Principal, id: string): Promise<Environment> {
    return this.operations.transition(principal.user.id, id, 'restart');
  }

  delete(principal: Principal, id: string): Promise<Environment> {
    return this.operations.transition(principal.user.id, id, 'delete');
  }

  /** Stops an environment for the system (idle timeout), not for a user request. */
  stopForIdleness(environment: Environment, minutes: number): Promise<boolean> {
    return this.operations.stopForIdleness(environment, minutes);
  }

  /** Applies the queued actions left behind by a server that stopped between an operation and its queue. */
  resumeQueued(before: Date): Promise<number> {
    return this.operations.resumeQueued(before);
  }

  /** Tells other modules (terminals) that the environment changed phase. Never fails the caller. */
  announce(environment: Environment): Promise<void> {
    return this.operations.announce(environment);
  }

  /** Runs the environment's current operation in the background. */
  execute(environment: Environment, finalMessage: string | null = null): void {
    this.operations.execute(environment, finalMessage);
  }

  /** Resolves when every background operation started so far has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.operations.idle();
  }

  /** The plan of an environment's owner (for idle timeouts); null when the owner is gone. */
  ownerPlan(userId: string): Promise<Plan | null> {
    return this.quota.ownerPlan(userId);
  }

  // ---- terminal activity --------------------------------------------------------------------------

  /** Terminal activity keeps an environment from idling out; written at most once a minute. */
  async touch(id: string): Promise<void> {
    const now = this.clock.nowMs();
    const last = this.touched.get(id) ?? 0;
    if (now - last < TOUCH_INTERVAL_MS) return;
    this.touched.set(id, now);
    await this.environments.touch(id, new Date(now));
  }

  // ---- account deletion -----------------------------------------------------------------------------

  /** `user.deleting`: removes every runtime resource of the account's environments, then their records and quota counter. */
  private async destroyAllForUser(userId: string): Promise<void> {
    for (const environment of await this.environments.listForUser(userId)) {
      if (environment.phase === 'terminated') continue;
      const spec = await this.specs.teardownSpecFor(environment);
      if (spec) await this.runtime.destroy(spec);
    }
    await this.environments.deleteAllForUser(userId);
  }
}
