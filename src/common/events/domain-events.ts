import { Global, Injectable, Logger, Module } from '@nestjs/common';

/** Every domain event, by name, with its payload. Modules add theirs here. */
export interface DomainEventMap {
  /** An account is being deleted: it is already deactivated; handlers remove what belongs to it. */
  'user.deleting': { userId: string };
  /** An admin deactivated an account: its sessions end. */
  'user.deactivated': { userId: string };
  /**
   * Sessions ended (sign-out, password change or reset, reuse detection, deactivation): one
   * (`sessionId`), or all of the user's but `exceptSessionId`, or all.
   */
  'auth.sessions_revoked': { userId: string; sessionId?: string; exceptSessionId?: string; reason: string };
  /** An environment moved to another lifecycle phase (terminals tell their clients). */
  'environment.phase_changed': { environmentId: string; phase: string; status: string; statusMessage: string | null };
}

type Handler<K extends keyof DomainEventMap> = (payload: DomainEventMap[K]) => Promise<void> | void;

/**
 * In-process domain events with awaited handlers: `emit` resolves when every handler has finished
 * and rejects with the first failure, so the emitter can decide what a failed clean-up means.
 * Modules subscribe in `onModuleInit`.
 */
@Injectable()
export class DomainEvents {
  private readonly logger = new Logger('DomainEvents');
  private readonly handlers = new Map<keyof DomainEventMap, Handler<keyof DomainEventMap>[]>();

  on<K extends keyof DomainEventMap>(name: K, handler: Handler<K>): void {
    const list = this.handlers.get(name) ?? [];
    list.push(handler as Handler<keyof DomainEventMap>);
    this.handlers.set(name, list);
  }

  async emit<K extends keyof DomainEventMap>(name: K, payload: DomainEventMap[K]): Promise<void> {
    for (const handler of this.handlers.get(name) ?? []) {
      try {
        await handler(payload);
      } catch (error) {
        this.logger.error(`A handler of ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
        throw error;
      }
    }
  }
}

@Global()
@Module({ providers: [DomainEvents], exports: [DomainEvents] })
export class DomainEventsModule {}
