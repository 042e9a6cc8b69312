import { randomUUID } from 'node:crypto';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock/clock.js';
import { AppError } from '../common/errors/app-error.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { EnvironmentSpec, RuntimeProvider, RuntimeStatus } from '../runtime/runtime.provider.js';
import { EnvironmentSpecs } from './environment-specs.js';
import { EnvironmentQuota } from './environment-quota.js';
import { Environment, Operation, OperationKind, Phase, QueuedAction, statusOf } from './environment.js';
import { EnvironmentError } from './environments.errors.js';
import { EnvironmentsRepository, TransitionChanges } from './environments.repository.js';

/** How often an operation in flight proves its owner is alive; the reconciler takes over after STALE. */
export const HEARTBEAT_MS = 15_000;
export const STALE_OPERATION_MS = 60_000;
/** How long a runtime may take to bring a workload to the requested state. */
const OPERATION_TIMEOUT_MS = 5 * 60_000;
const POLL_MS = 250;

/** The requests that move an environment: from which phases, to which phase, with which operation. */
export type LifecycleAction = 'start' | 'stop' | 'restart' | 'delete';

const TRANSITIONS: Record<LifecycleAction, { from: readonly Phase[]; to: Phase; op: OperationKind; verb: string }> = {
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

/** What a finished operation records besides clearing itself. */
type Outcome = Pick<TransitionChanges, 'phase' | 'statusMessage' | 'installation' | 'startedAt' | 'terminatedAt'>;

export function environmentNotFound(): AppError {
  return new AppError(EnvironmentError.NotFound, 'Environment not found');
}

/** 409 `invalid_transition`, with the current status and phase so a client can refresh its view. */
export function invalidTransition(environment: Environment, verb: string): AppError {
  return new AppError(EnvironmentError.InvalidTransition, `Cannot ${verb} an environment that is ${environment.phase}`, {
    extra: { status: statusOf(environment.phase), phase: environment.phase },
  });
}

/**
 * The environment lifecycle. A request records a transition atomically (expected phases → new
 * phase with a new operation id) and returns at once; the runtime work runs in the background,
 * renews the operation's heartbeat, and records its outcome only if its operation is still current.
 * A start or stop that arrives while the opposite is in flight is queued and runs afterwards. A
 * crashed server's operations are resumed by the reconciler (runtime operations are idempotent).
 */
@Injectable()
export class EnvironmentOperations implements OnApplicationShutdown {
  private readonly logger = new Logger('Environments');
  private readonly running = new Set<Promise<void>>();
  private shuttingDown = false;

  constructor(
    private readonly environments: EnvironmentsRepository,
    private readonly specs: EnvironmentSpecs,
    private readonly quota: EnvironmentQuota,
    private readonly runtime: RuntimeProvider,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    // Operations in flight keep their heartbeat-less record; the reconciler of a live replica resumes them.
    await Promise.race([Promise.allSettled([...this.running]), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  }

  newOperation(kind: OperationKind): Operation {
    const now = this.clock.now();
    return { id: randomUUID(), kind, startedAt: now, heartbeatAt: now };
  }

  // ---- transitions --------------------------------------------------------------------------------

  /** Restart and delete: the transition when the phase allows it, else 404 or 409. */
  async transition(userId: string, id: string, action: 'restart' | 'delete'): Promise<Environment> {
    const moved = await this.tryTransition(userId, id, action);
    if (moved) return moved;
    const current = await this.environments.findOwned(id, userId);
    if (!current) throw environmentNotFound();
    throw invalidTransition(current, TRANSITIONS[action].verb);
  }

  /**
   * Start and stop: the transition when the phase allows it; else, while the opposite operation is
   * in flight, the action is queued (or a queued opposite cancelled). Tried again once if the
   * operation finished in between, so a request never loses a race with the end of an operation.
   */
  async transitionOrQueue(userId: string, id: string, action: QueuedAction): Promise<Environment> {
    const rule = QUEUE[action];
    const opposite: QueuedAction = action === 'start' ? 'stop' : 'start';
    let current: Environment | null = null;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const moved = await this.tryTransition(userId, id, action);
      if (moved) return moved;
      current = await this.environments.findOwned(id, userId);
      if (!current) throw environmentNotFound();
      let queued: Environment | null;
      if (rule.while.includes(current.phase)) {
        queued = await this.environments.queue(id, userId, rule.while, action);
      } else if (rule.cancels.includes(current.phase) && current.queuedAction === opposite) {
        queued = await this.environments.queue(id, userId, rule.cancels, null);
      } else {
        break;
      }
      if (queued) return queued;
      // The operation finished between the two reads: the transition may be allowed now.
    }
    current ??= await this.environments.findOwned(id, userId);
    if (!current) throw environmentNotFound();
    throw invalidTransition(current, TRANSITIONS[action].verb);
  }

  /** Records the transition and starts its operation; null when the phase does not allow it. */
  private async tryTransition(userId: string | undefined, id: string, action: LifecycleAction): Promise<Environment | null> {
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

  /** Tells other modules (terminals) that the environment changed phase. Never fails the caller. */
  async announce(environment: Environment): Promise<void> {
    try {
      await this.events.emit('environment.phase_changed', {
        environmentId: environment.id,
        userId: environment.userId,
        phase: environment.phase,
        status: statusOf(environment.phase),
        statusMessage: environment.statusMessage,
      });
    } catch (error) {
      this.logger.warn(`A phase-change listener failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /**
   * Tells other modules (status sockets) that an environment was created, or that something other
   * than its phase changed (settings, status message, installation progress). Never fails the caller.
   */
  async announceChange(environment: Pick<Environment, 'id' | 'userId'>, what: 'created' | 'changed' = 'changed'): Promise<void> {
    try {
      await this.events.emit(`environment.${what}`, { environmentId: environment.id, userId: environment.userId });
    } catch (error) {
      this.logger.warn(`An environment ${what} listener failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  // ---- queued actions -----------------------------------------------------------------------------

  /** Runs the action queued while the operation that just finished was in flight. */
  private async runQueued(environment: Environment): Promise<void> {
    const action = environment.queuedAction;
    if (!action) return;
    if (!(await this.tryTransition(undefined, environment.id, action))) {
      // Nothing to do from here (e.g. a queued start after a stop that left the workload running).
      await this.environments.completeQueued(environment.id, action);
    }
  }

  /** Applies the queued actions left behind by a server that stopped between an operation and its queue. */
  async resumeQueued(before: Date): Promise<number> {
    let resumed = 0;
    for (const environment of await this.environments.queuedWithoutOperation(before)) {
      await this.runQueued(environment);
      resumed += 1;
    }
    return resumed;
  }

  // ---- background execution -----------------------------------------------------------------------

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

  private async perform(environment: Environment, finalMessage: string | null): Promise<void> {
    const operation = environment.operation;
    if (!operation) return;
    const heartbeat = setInterval(
      () => void this.environments.heartbeat(environment.id, operation.id, this.clock.now()).catch(() => undefined),
      HEARTBEAT_MS,
    );
    heartbeat.unref();
    try {
      const spec = await this.specs.specFor(environment);
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
      if (outcome.phase === 'terminated') await this.quota.releaseSlot(environment.userId);
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

  /** The runtime work of one operation, up to the state it wants. */
  private async runOperation(kind: OperationKind, spec: EnvironmentSpec): Promise<Outcome> {
    switch (kind) {
      case 'provision':
        await this.runtime.provision(spec);
        return this.runningOutcome(await this.awaitState(spec, ['running']));
      case 'start':
        return this.bringUp(spec);
      case 'restart':
        await this.bringDown(spec);
        return this.bringUp(spec);
      case 'stop':
        await this.bringDown(spec);
        return { phase: 'stopped' };
      case 'destroy':
        await this.runtime.destroy(spec);
        await this.awaitState(spec, ['absent']);
        return { phase: 'terminated', terminatedAt: this.clock.now(), installation: null };
    }
  }

  /**
   * Starts the workload and waits until it runs. A workload whose storage vanished (`absent`, e.g.
   * an environment in error) is provisioned again, empty; otherwise its storage is reused.
   */
  private async bringUp(spec: EnvironmentSpec): Promise<Outcome> {
    const current = await this.runtime.status(spec);
    if (current.state === 'absent') await this.runtime.provision(spec);
    else await this.runtime.start(spec);
    return this.runningOutcome(await this.awaitState(spec, ['running']));
  }

  /** Stops the workload and waits until it is stopped (or gone). */
  private async bringDown(spec: EnvironmentSpec): Promise<void> {
    await this.runtime.stop(spec);
    await this.awaitState(spec, ['stopped', 'absent']);
  }

  private runningOutcome(status: RuntimeStatus): Outcome {
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
}
