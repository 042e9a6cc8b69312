import { randomUUID } from 'node:crypto';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Principal } from '../auth/auth.decorators.js';
import { Clock } from '../common/clock/clock.js';
import { AppError, FieldError } from '../common/errors/app-error.js';
import { CommonError } from '../common/errors/error-code.js';
import { EnvironmentError } from './environments.errors.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { EnvironmentSpec, LogPage, RuntimeMetrics, RuntimeProvider, RuntimeStatus } from '../runtime/runtime.provider.js';
import { TemplateResources } from '../templates/template.js';
import { TemplatesService } from '../templates/templates.service.js';
import { PLANS, type Plan } from '../users/plans.js';
import { UsersRepository } from '../users/users.repository.js';
import { CreateEnvironmentDto, ResourcesDto, UpdateEnvironmentDto } from './dto/environment.dto.js';
import { Environment, Installation, Operation, OperationKind, Phase, QueuedAction, slugify, statusOf } from './environment.js';
import { EnvironmentsRepository } from './environments.repository.js';
import { cpuMillicores, quantityBytes } from '../templates/template-rules.js';

/** How often an operation in flight proves its owner is alive; the reconciler takes over after STALE. */
export const HEARTBEAT_MS = 15_000;
export const STALE_OPERATION_MS = 60_000;
/** How long a runtime may take to bring a workload to the requested state. */
const OPERATION_TIMEOUT_MS = 5 * 60_000;
const POLL_MS = 250;
/** Terminal activity is written at most this often per environment. */
const TOUCH_INTERVAL_MS = 60_000;

const TRANSITIONS: Record<'start' | 'stop' | 'restart' | 'delete', { from: readonly Phase[]; to: Phase; op: OperationKind; verb: string }> =
  {
    start: { from: ['stopped', 'error'], to: 'starting', op: 'start', verb: 'start' },
    stop: { from: ['running', 'error'], to: 'stopping', op: 'stop', verb: 'stop' },
    restart: { from: ['running', 'stopped', 'error'], to: 'restarting', op: 'restart', verb: 'restart' },
    delete: {
      from: ['provisioning', 'starting', 'running', 'stopping', 'stopped', 'restarting', 'error'],
      to: 'terminating',
      op: 'destroy',
      verb: 'delete',
    },
  };

/**
 * A start asked for while a stop is in flight (or a stop while the environment is coming up) is
 * queued and runs once that operation has finished: the client sees `stopped` (or `creating`) and
 * may ask for the opposite at once. Asking for what is already under way cancels a queued opposite.
 */
const QUEUE: Record<QueuedAction, { while: readonly Phase[]; cancels: readonly Phase[] }> = {
  start: { while: ['stopping'], cancels: ['provisioning', 'starting', 'restarting'] },
  stop: { while: ['provisioning', 'starting', 'restarting'], cancels: ['stopping'] },
};

function notFound(): AppError {
  return new AppError(EnvironmentError.NotFound, 'Environment not found');
}

function percent(value: number | null, limit: number | null): number | null {
  if (value === null || limit === null || limit <= 0) return null;
  return Math.round((value / limit) * 1000) / 10;
}

/**
 * The environment lifecycle. Requests record a transition atomically (expected phase → new phase
 * with an operation id) and return at once; the runtime work runs in the background and records
 * its outcome only if its operation is still current. A crashed server's operations are resumed
 * by the reconciler (runtime operations are idempotent).
 */
@Injectable()
export class EnvironmentsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Environments');
  private readonly running = new Set<Promise<void>>();
  private readonly touched = new Map<string, number>();
  private shuttingDown = false;

  constructor(
    private readonly environments: EnvironmentsRepository,
    private readonly templates: TemplatesService,
    private readonly runtime: RuntimeProvider,
    private readonly users: UsersRepository,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    this.events.on('user.deleting', ({ userId }) => this.destroyAllForUser(userId));
  }

  async onApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    // Operations in flight keep their heartbeat-less record; the reconciler of a live replica resumes them.
    await Promise.race([Promise.allSettled([...this.running]), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  }

  // ---- queries ----------------------------------------------------------------------------------

  list(principal: Principal): Promise<Environment[]> {
    return this.environments.listForUser(principal.user.id);
  }

  async get(principal: Principal, id: string): Promise<Environment> {
    const environment = await this.environments.findOwned(id, principal.user.id);
    if (!environment) throw notFound();
    return this.refreshInstallation(environment);
  }

  /** For running environments, the runtime's view of the startup script is fresher than ours. */
  private async refreshInstallation(environment: Environment): Promise<Environment> {
    if (environment.phase !== 'running' || environment.installation?.completed) return environment;
    try {
      const spec = await this.specFor(environment);
      const status = await this.runtime.status(spec);
      const message = status.message ?? environment.statusMessage;
      if (status.installation && JSON.stringify(status.installation) !== JSON.stringify(environment.installation)) {
        await this.environments.updateInstallation(environment.id, status.installation, message);
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
    return this.runtime.logs(await this.specFor(environment), { lines, since });
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
    const metrics = environment.phase === 'terminated' ? empty : await this.runtime.metrics(await this.specFor(environment));
    const cpuLimit = cpuMillicores(environment.resources.cpu);
    return {
      ...metrics,
      cpuPercent: percent(metrics.cpuCores, cpuLimit === null ? null : cpuLimit / 1000),
      memoryPercent: percent(metrics.memoryBytes, quantityBytes(environment.resources.memory)),
      diskPercent: percent(metrics.diskBytes, quantityBytes(environment.resources.storage)),
    };
  }

  async getOwned(principal: Principal, id: string): Promise<Environment> {
    const environment = await this.environments.findOwned(id, principal.user.id);
    if (!environment) throw notFound();
    return environment;
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
    const plan = PLANS[principal.user.plan];
    const resources = this.resolveResources(
      dto.resources ?? dto.resource_limits ?? null,
      plan,
      dto.resources ? 'resources' : 'resource_limits',
    );
    const environmentVariables = { ...(dto.environment_variables ?? {}) };

    if (!(await this.environments.reserveSlot(principal.user.id, plan.maxEnvironments))) {
      throw new AppError(
        EnvironmentError.PlanLimitReached,
        `Your ${plan.displayName} plan allows ${plan.maxEnvironments} environment${plan.maxEnvironments === 1 ? '' : 's'}; delete one or upgrade your plan`,
        { extra: { limit: plan.maxEnvironments, plan: plan.name } },
      );
    }
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
        operation: this.newOperation('provision'),
      });
    } catch (error) {
      await this.environments.releaseSlot(principal.user.id);
      throw error;
    }
    await this.templates.incrementUsage(template.id);
    this.execute(environment);
    return environment;
  }

  /** Requested resources, each at most the plan's maximum; omitted ones take the plan's default. */
  private resolveResources(requested: ResourcesDto | null, plan: Plan, field: string): TemplateResources {
    const errors: FieldError[] = [];
    const pick = (key: keyof TemplateResources, measure: (q: string) => number | null): string => {
      const max = plan.maxResources[key];
      const fallback = plan.defaultResources[key];
      const wanted = requested?.[key] ?? null;
      if (wanted === null) return fallback;
      const amount = measure(wanted);
      if (amount === null) {
        errors.push({ field: `${field}.${key}`, message: `${field}.${key} is not a valid quantity`, code: 'quantity' });
      } else if (amount > (measure(max) ?? 0)) {
        errors.push({
          field: `${field}.${key}`,
          message: `${field}.${key} ${wanted} exceeds your ${plan.displayName} plan's maximum of ${max}`,
          code: 'plan_limit',
        });
      }
      return wanted;
    };
    const resources = { cpu: pick('cpu', cpuMillicores), memory: pick('memory', quantityBytes), storage: pick('storage', quantityBytes) };
    if (errors.length > 0) throw new AppError(CommonError.ValidationFailed, errors.map((e) => e.message).join('; '), { errors });
    return resources;
  }

  async update(principal: Principal, id: string, dto: UpdateEnvironmentDto): Promise<Environment> {
    const environment = await this.getOwned(principal, id);
    const requested = dto.resources ?? dto.resource_limits ?? null;
    const resources = requested
      ? this.resolveResources(
          { ...environment.resources, ...stripNulls(requested) },
          PLANS[principal.user.plan],
          dto.resources ? 'resources' : 'resource_limits',
        )
      : undefined;
    const updated = await this.environments.updateSettings(id, principal.user.id, {
      name: dto.name ? dto.name.trim() : undefined,
      slug: dto.name ? slugify(dto.name) : undefined,
      environmentVariables: dto.environment_variables ?? undefined,
      resources,
    });
    if (!updated) throw this.conflict(environment, 'update');
    return updated;
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  start(principal: Principal, id: string): Promise<Environment> {
    return this.transitionOrQueue(principal, id, 'start');
  }

  stop(principal: Principal, id: string): Promise<Environment> {
    return this.transitionOrQueue(principal, id, 'stop');
  }

  /**
   * The transition when the phase allows it; else, while the opposite operation is in flight, the
   * action is queued (or a queued opposite cancelled). Tried again once if the operation finished
   * in between, so a request never loses a race with the end of an operation.
   */
  private async transitionOrQueue(principal: Principal, id: string, action: QueuedAction): Promise<Environment> {
    const rule = QUEUE[action];
    const opposite: QueuedAction = action === 'start' ? 'stop' : 'start';
    let current: Environment | null = null;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const moved = await this.tryTransition(principal.user.id, id, action);
      if (moved) return moved;
      current = await this.environments.findOwned(id, principal.user.id);
      if (!current) throw notFound();
      let queued: Environment | null;
      if (rule.while.includes(current.phase)) {
        queued = await this.environments.queue(id, principal.user.id, rule.while, action);
      } else if (rule.cancels.includes(current.phase) && current.queuedAction === opposite) {
        queued = await this.environments.queue(id, principal.user.id, rule.cancels, null);
      } else {
        break;
      }
      if (queued) return queued;
      // The operation finished between the two reads: the transition may be allowed now.
    }
    throw this.conflict(current ?? (await this.getOwned(principal, id)), TRANSITIONS[action].verb);
  }

  /** Runs the action queued while the operation that just finished was in flight. */
  private async runQueued(environment: Environment): Promise<void> {
    const action = environment.queuedAction;
    if (!action) return;
    if (!(await this.tryTransition(undefined, environment.id, action))) {
      // Nothing to do from here (e.g. a queued start after a stop that left the workload running).
      await this.environments.completeQueued(environment.id, action);
    }
  }

  /** Applies a queued action left behind by a server that stopped between an operation and its queue. */
  async resumeQueued(before: Date): Promise<number> {
    let resumed = 0;
    for (const environment of await this.environments.queuedWithoutOperation(before)) {
      await this.runQueued(environment);
      resumed += 1;
    }
    return resumed;
  }

  restart(principal: Principal, id: string): Promise<Environment> {
    return this.transition(principal, id, 'restart');
  }

  delete(principal: Principal, id: string): Promise<Environment> {
    return this.transition(principal, id, 'delete');
  }

  private async transition(principal: Principal, id: string, action: keyof typeof TRANSITIONS): Promise<Environment> {
    const moved = await this.tryTransition(principal.user.id, id, action);
    if (!moved) {
      const current = await this.environments.findOwned(id, principal.user.id);
      if (!current) throw notFound();
      throw this.conflict(current, TRANSITIONS[action].verb);
    }
    return moved;
  }

  /** Records the transition and starts its operation; null when the phase does not allow it. */
  private async tryTransition(userId: string | undefined, id: string, action: keyof typeof TRANSITIONS): Promise<Environment | null> {
    const rule = TRANSITIONS[action];
    const moved = await this.environments.transition(
      id,
      rule.from,
      { phase: rule.to, operation: this.newOperation(rule.op), statusMessage: null, queuedAction: null },
      userId,
    );
    if (!moved) return null;
    await this.announce(moved);
    this.execute(moved);
    return moved;
  }

  /** Stops an environment for the system (idle timeout), not for a user request. */
  async stopForIdleness(environment: Environment, minutes: number): Promise<boolean> {
    const moved = await this.environments.transition(environment.id, ['running'], {
      phase: 'stopping',
      operation: this.newOperation('stop'),
      statusMessage: `Stopped after ${minutes} minutes without terminal activity`,
    });
    if (moved) {
      await this.announce(moved);
      this.execute(moved, moved.statusMessage);
    }
    return moved !== null;
  }

  private conflict(environment: Environment, verb: string): AppError {
    return new AppError(EnvironmentError.InvalidTransition, `Cannot ${verb} an environment that is ${environment.phase}`, {
      extra: { status: statusOf(environment.phase), phase: environment.phase },
    });
  }

  /** Tells other modules (terminals) that the environment changed phase. Never fails the caller. */
  async announce(environment: Environment): Promise<void> {
    try {
      await this.events.emit('environment.phase_changed', {
        environmentId: environment.id,
        phase: environment.phase,
        status: statusOf(environment.phase),
        statusMessage: environment.statusMessage,
      });
    } catch (error) {
      this.logger.warn(`A phase-change listener failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Terminal activity keeps an environment from idling out; written at most once a minute. */
  async touch(id: string): Promise<void> {
    const now = this.clock.nowMs();
    const last = this.touched.get(id) ?? 0;
    if (now - last < TOUCH_INTERVAL_MS) return;
    this.touched.set(id, now);
    await this.environments.touch(id, new Date(now));
  }

  // ---- background operations ----------------------------------------------------------------------

  private newOperation(kind: OperationKind): Operation {
    const now = this.clock.now();
    return { id: randomUUID(), kind, startedAt: now, heartbeatAt: now };
  }

  /** Runs the environment's current operation in the background. */
  execute(environment: Environment, finalMessage: string | null = null): void {
    const task = this.perform(environment, finalMessage)
      .catch((error: unknown) =>
        this.logger.error(`Operation on ${environment.id} failed unexpectedly: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => this.running.delete(task));
    this.running.add(task);
  }

  /** Resolves when every background operation started so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  async specFor(environment: Environment): Promise<EnvironmentSpec> {
    const template = await this.templates.findById(environment.templateId);
    if (!template)
      throw new AppError(EnvironmentError.TemplateGone, `The template of this environment (${environment.templateName}) no longer exists`);
    return {
      id: environment.id,
      slug: environment.slug,
      userId: environment.userId,
      template,
      resources: environment.resources,
      environmentVariables: { ...template.environmentVariables, ...environment.environmentVariables },
    };
  }

  private async perform(environment: Environment, finalMessage: string | null): Promise<void> {
    const operation = environment.operation;
    if (!operation) return;
    const heartbeat = setInterval(
      () => void this.environments.heartbeat(environment.id, operation.id, this.clock.now()).catch(() => undefined),
      HEARTBEAT_MS,
    );
    heartbeat.unref();
    try {
      const spec = await this.specFor(environment);
      const outcome = await this.runOperation(operation.kind, spec);
      const completed = await this.environments.completeOperation(environment.id, operation.id, {
        ...outcome,
        statusMessage: outcome.statusMessage ?? finalMessage,
        operation: null,
      });
      if (completed) await this.announce(completed);
      if (completed?.queuedAction) await this.runQueued(completed);
      if (!completed) {
        // Another request took over (e.g. a delete during provisioning): never leave resources behind it.
        const current = await this.environments.findById(environment.id);
        if (!current || current.phase === 'terminating' || current.phase === 'terminated') await this.runtime.destroy(spec);
        return;
      }
      if (outcome.phase === 'terminated') await this.environments.releaseSlot(environment.userId);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.logger.warn(`${operation.kind} of environment ${environment.id} failed: ${reason}`);
      if (this.shuttingDown) return;
      const failed = await this.environments.completeOperation(environment.id, operation.id, {
        phase: 'error',
        statusMessage: `${operation.kind} failed: ${reason}`,
        operation: null,
      });
      if (failed) await this.announce(failed);
      if (failed?.queuedAction) await this.runQueued(failed);
    } finally {
      clearInterval(heartbeat);
    }
  }

  private async runOperation(
    kind: OperationKind,
    spec: EnvironmentSpec,
  ): Promise<{
    phase: Phase;
    statusMessage?: string | null;
    installation?: Installation | null;
    startedAt?: Date | null;
    terminatedAt?: Date | null;
  }> {
    switch (kind) {
      case 'provision': {
        await this.runtime.provision(spec);
        return this.runningOutcome(await this.awaitState(spec, ['running']));
      }
      case 'start': {
        const current = await this.runtime.status(spec);
        if (current.state === 'absent') await this.runtime.provision(spec);
        else await this.runtime.start(spec);
        return this.runningOutcome(await this.awaitState(spec, ['running']));
      }
      case 'restart': {
        await this.runtime.stop(spec);
        await this.awaitState(spec, ['stopped', 'absent']);
        const current = await this.runtime.status(spec);
        if (current.state === 'absent') await this.runtime.provision(spec);
        else await this.runtime.start(spec);
        return this.runningOutcome(await this.awaitState(spec, ['running']));
      }
      case 'stop': {
        await this.runtime.stop(spec);
        await this.awaitState(spec, ['stopped', 'absent']);
        return { phase: 'stopped' };
      }
      case 'destroy': {
        await this.runtime.destroy(spec);
        await this.awaitState(spec, ['absent']);
        return { phase: 'terminated', terminatedAt: this.clock.now(), installation: null };
      }
    }
  }

  private runningOutcome(status: RuntimeStatus): {
    phase: Phase;
    statusMessage: string | null;
    installation: Installation | null;
    startedAt: Date;
  } {
    return { phase: 'running', statusMessage: status.message, installation: status.installation, startedAt: this.clock.now() };
  }

  /** Polls the runtime until it reports one of `states`; a `failed` workload or a timeout is an error. */
  private async awaitState(spec: EnvironmentSpec, states: RuntimeStatus['state'][]): Promise<RuntimeStatus> {
    const deadline = Date.now() + OPERATION_TIMEOUT_MS;
    for (;;) {
      const status = await this.runtime.status(spec);
      if (states.includes(status.state)) return status;
      if (status.state === 'failed') throw new Error(status.message ?? 'the workload failed');
      if (Date.now() > deadline)
        throw new Error(
          `the runtime did not reach ${states.join('/')} within ${OPERATION_TIMEOUT_MS / 60_000} minutes (it is ${status.state})`,
        );
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  // ---- account deletion -----------------------------------------------------------------------------

  private async destroyAllForUser(userId: string): Promise<void> {
    for (const environment of await this.environments.listForUser(userId)) {
      if (environment.phase === 'terminated') continue;
      const template = await this.templates.findById(environment.templateId);
      if (template) {
        await this.runtime.destroy({
          id: environment.id,
          slug: environment.slug,
          userId,
          template,
          resources: environment.resources,
          environmentVariables: {},
        });
      }
    }
    await this.environments.deleteAllForUser(userId);
  }

  /** The plan of an environment's owner (for idle timeouts); null when the owner is gone. */
  async ownerPlan(userId: string): Promise<Plan | null> {
    const user = await this.users.findById(userId);
    return user ? PLANS[user.plan] : null;
  }
}

function stripNulls(resources: ResourcesDto): Partial<TemplateResources> {
  const result: Partial<TemplateResources> = {};
  if (resources.cpu) result.cpu = resources.cpu;
  if (resources.memory) result.memory = resources.memory;
  if (resources.storage) result.storage = resources.storage;
  return result;
}
