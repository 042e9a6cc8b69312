import { Global, Injectable, Logger, Module } from '@nestjs/common';
import type { CacheTrust } from '../cache/loading-cache.js';
import { SharedState } from '../shared-state/shared-state.js';
import { RedisReplicaBus, ReplicaBus, SingleProcessBus } from './replica-bus.js';

/** Every domain event, by name, with its payload. Modules add theirs here. */
export interface DomainEventMap {
  /** An account is being deleted: it is already deactivated; handlers remove what belongs to it. */
  'user.deleting': { userId: string };
  /** An admin deactivated an account: its sessions end. */
  'user.deactivated': { userId: string };
  /**
   * A user record was written (profile, role, plan, active flag, password, verification, sign-in
   * bookkeeping, deletion): a copy of it held anywhere (the principal cache of every replica) is stale.
   */
  'user.changed': { userId: string };
  /**
   * Sessions ended (sign-out, password change or reset, reuse detection, deactivation): one
   * (`sessionId`), or all of the user's but `exceptSessionId`, or all.
   */
  'auth.sessions_revoked': { userId: string; sessionId?: string; exceptSessionId?: string; reason: string };
  /** An environment moved to another lifecycle phase (terminals and status sockets tell their clients). */
  'environment.phase_changed': { environmentId: string; userId: string; phase: string; status: string; statusMessage: string | null };
  /** An environment was created (its record exists, in `provisioning`). */
  'environment.created': { environmentId: string; userId: string };
  /**
   * Something of an environment other than its phase changed: its settings, its status message or
   * its installation progress (status sockets send it again).
   */
  'environment.changed': { environmentId: string; userId: string };
  /**
   * Environment records of this user were written (any write: creation, lifecycle, settings,
   * heartbeat, activity, deletion), announced by `EnvironmentsRepository` after each one: a copy
   * of the user's environment list held anywhere (the list cache of every replica) is stale.
   */
  'environment.written': { userId: string };
  /**
   * A stored template was changed, soft-deleted or brought back (by an admin or by a replica's
   * loader): a copy of it held anywhere (the template cache of every replica) is stale.
   */
  'template.changed': { templateId: string };
}

type Handler<K extends keyof DomainEventMap> = (payload: DomainEventMap[K]) => Promise<void> | void;

export interface SubscribeOptions {
  /**
   * Also run when the event is emitted on another replica (it reaches this one through Redis).
   * For handlers that keep this process's own state right: caches, open sockets, terminal clients.
   * Without it (the default) a handler runs only in the process that emitted the event: the place
   * for effects that must happen once (database writes, runtime operations).
   */
  everyReplica?: boolean;
}

interface Subscription {
  handler: Handler<keyof DomainEventMap>;
  everyReplica: boolean;
}

/**
 * A status is a snapshot: one that could not reach the other replicas within this long is not
 * worth sending late (the terminals there are closed by their upstream anyway).
 */
const LATE_DELIVERY_LIMIT_MS: Partial<Record<keyof DomainEventMap, number>> = { 'environment.phase_changed': 10_000 };

/**
 * Domain events with awaited handlers, across the replicas (docs/scaling.md):
 *
 * - `emit` first hands the event to the other replicas (`ReplicaBus`: Redis publish/subscribe, or
 *   nothing in one process; never fails), then runs this process's handlers in order, and
 *   resolves when every one has finished or rejects with the first failure, so the emitter can
 *   decide what a failed clean-up means;
 * - another replica runs only its handlers subscribed with `{ everyReplica: true }`, in the order
 *   the events arrive; a failure there is logged. The emitter never runs a handler twice;
 * - `inSync`, `syncGeneration` and `onResync` tell whether this replica hears every event right
 *   now, so caches know when they cannot be trusted.
 *
 * Modules subscribe in `onModuleInit`.
 */
@Injectable()
export class DomainEvents {
  private readonly logger = new Logger('DomainEvents');
  private readonly handlers = new Map<keyof DomainEventMap, Subscription[]>();
  /** Events from other replicas, handled one after the other in arrival order. */
  private received: Promise<void> = Promise.resolve();

  constructor(private readonly replicas: ReplicaBus) {
    replicas.listen((name, payload) => {
      this.received = this.received.then(() => this.deliverFromReplica(name as keyof DomainEventMap, payload as never));
    });
  }

  on<K extends keyof DomainEventMap>(name: K, handler: Handler<K>, options: SubscribeOptions = {}): void {
    const list = this.handlers.get(name) ?? [];
    list.push({ handler: handler as Handler<keyof DomainEventMap>, everyReplica: options.everyReplica === true });
    this.handlers.set(name, list);
  }

  async emit<K extends keyof DomainEventMap>(name: K, payload: DomainEventMap[K]): Promise<void> {
    await this.replicas.publish(name, payload, { maxAgeMs: LATE_DELIVERY_LIMIT_MS[name] });
    for (const { handler } of this.handlers.get(name) ?? []) {
      try {
        await handler(payload);
      } catch (error) {
        this.logger.error(`A handler of ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
        throw error;
      }
    }
  }

  /**
   * Runs this process's `everyReplica` handlers for an event emitted elsewhere: by the replica bus,
   * and by a re-check that found what an event missed during a gap would have said.
   */
  async deliverFromReplica<K extends keyof DomainEventMap>(name: K, payload: DomainEventMap[K]): Promise<void> {
    for (const { handler, everyReplica } of this.handlers.get(name) ?? []) {
      if (!everyReplica) continue;
      try {
        await handler(payload);
      } catch (error) {
        this.logger.error(`A handler of ${name} (from another replica) failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  /** True while this process hears every event of the other replicas (always, in one process). */
  get inSync(): boolean {
    return this.replicas.inSync;
  }

  /** Changes whenever `inSync` does: what was cached in one generation is not trusted in the next. */
  get syncGeneration(): number {
    return this.replicas.generation;
  }

  /** Both at once, as a cache invalidated by these events asks them (`LoadingCache`'s `trust`). */
  readonly cacheTrust = (): CacheTrust => ({ inSync: this.inSync, generation: this.syncGeneration });

  /** Told when this process hears the others again after a gap (it may have missed revocations). */
  onResync(listener: () => void): void {
    this.replicas.onResync(listener);
  }
}

@Global()
@Module({
  providers: [
    DomainEvents,
    {
      provide: ReplicaBus,
      inject: [SharedState],
      useFactory: (shared: SharedState): ReplicaBus => (shared.enabled ? new RedisReplicaBus(shared) : new SingleProcessBus()),
    },
  ],
  exports: [DomainEvents],
})
export class DomainEventsModule {}
