import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { isDuplicateKeyError } from '../common/errors/database-errors.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { leanMapper } from '../database/lean-mapper.js';
import { parseObjectId } from '../database/object-id.js';
import { ENVIRONMENT_ID_PATTERN } from '../runtime/runtime.provider.js';
import type { TemplateResources } from '../templates/template.js';
import { Environment, Installation, Operation, OperationKind, Phase, QUEUED_ACTIONS, QueuedAction } from './environment.js';
import { EnvironmentQuotaRecord, EnvironmentRecord } from './schemas/environment.schema.js';

type LeanEnvironment = EnvironmentRecord & { _id: Types.ObjectId };

function toEnvironment(r: LeanEnvironment): Environment {
  return {
    id: r._id.toHexString(),
    userId: r.user_id,
    name: r.name,
    slug: r.slug,
    templateId: r.template_id,
    templateName: r.template_name,
    resources: { cpu: r.resources.cpu, memory: r.resources.memory, storage: r.resources.storage },
    environmentVariables: Object.fromEntries((r.environment_variables ?? []).map((v) => [v.name, v.value])),
    ports: [...(r.preview_ports ?? [])],
    phase: r.phase,
    statusMessage: r.status_message ?? null,
    installation: r.installation
      ? {
          completed: r.installation.completed,
          failed: r.installation.failed,
          stepsDone: r.installation.steps_done,
          stepsTotal: r.installation.steps_total,
        }
      : null,
    operation: r.operation
      ? {
          id: r.operation.id,
          kind: r.operation.kind as OperationKind,
          startedAt: r.operation.started_at,
          heartbeatAt: r.operation.heartbeat_at,
        }
      : null,
    queuedAction: r.queued_action ?? null,
    lastAccessed: r.last_accessed ?? null,
    startedAt: r.started_at ?? null,
    terminatedAt: r.terminated_at ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export type NewEnvironment = Pick<
  Environment,
  'userId' | 'name' | 'slug' | 'templateId' | 'templateName' | 'resources' | 'environmentVariables'
> & {
  operation: Operation;
};

/** Fields a transition may set besides the phase. */
export interface TransitionChanges {
  phase: Phase;
  statusMessage?: string | null;
  operation?: Operation | null;
  installation?: Installation | null;
  startedAt?: Date | null;
  terminatedAt?: Date | null;
  queuedAction?: QueuedAction | null;
}

function pairs(variables: Record<string, string>): { name: string; value: string }[] {
  return Object.entries(variables).map(([name, value]) => ({ name, value }));
}

/** Environment ids are lower-case: they reach paths and tmux names. */
const objectId = (id: string): Types.ObjectId | null => parseObjectId(id, ENVIRONMENT_ID_PATTERN);

const asEnvironment = leanMapper(toEnvironment, { idPattern: ENVIRONMENT_ID_PATTERN });
const asId = leanMapper((record: { _id: Types.ObjectId }) => record._id.toHexString());

function operationDocument(operation: Operation | null): EnvironmentRecord['operation'] {
  return operation
    ? { id: operation.id, kind: operation.kind, started_at: operation.startedAt, heartbeat_at: operation.heartbeatAt }
    : null;
}

function changeSet(changes: TransitionChanges): Record<string, unknown> {
  const set: Record<string, unknown> = { phase: changes.phase };
  if (changes.statusMessage !== undefined) set.status_message = changes.statusMessage;
  if (changes.operation !== undefined) set.operation = operationDocument(changes.operation);
  if (changes.installation !== undefined) {
    set.installation = changes.installation
      ? {
          completed: changes.installation.completed,
          failed: changes.installation.failed,
          steps_done: changes.installation.stepsDone,
          steps_total: changes.installation.stepsTotal,
        }
      : null;
  }
  if (changes.startedAt !== undefined) set.started_at = changes.startedAt;
  if (changes.terminatedAt !== undefined) set.terminated_at = changes.terminatedAt;
  if (changes.queuedAction !== undefined) set.queued_action = changes.queuedAction;
  return set;
}

/** Whose environment a write or a purge found (for the announcement). */
type Owner = { _id: Types.ObjectId; user_id: string };

/**
 * Persistence of environments. Every lifecycle change is a conditional single-document update
 * (expected phase, or expected operation id), so concurrent requests and replicas never both win.
 *
 * Every write of an environment record is announced once it is stored (`environment.written`,
 * with its owner, on every replica), here, where no write path can forget it: the copies of the
 * owner's list held elsewhere (`EnvironmentListCache`) are dropped. A write by id that needs no
 * result is a `findOneAndUpdate` all the same, to learn whose environment it wrote (FerretDB v1
 * takes no projection there); a write that matched nothing announces nothing.
 */
@Injectable()
export class EnvironmentsRepository {
  constructor(
    @InjectModel(EnvironmentRecord.name) private readonly environments: Model<EnvironmentRecord>,
    @InjectModel(EnvironmentQuotaRecord.name) private readonly quotas: Model<EnvironmentQuotaRecord>,
    private readonly events: DomainEvents,
  ) {}

  /** Tells every replica that its copies of these users' environment lists are stale. */
  private async written(...userIds: string[]): Promise<void> {
    for (const userId of new Set(userIds)) await this.events.emit('environment.written', { userId });
  }

  /** The environment a write returned, once its change is announced. */
  private async announced(environment: Environment | null): Promise<Environment | null> {
    if (environment) await this.written(environment.userId);
    return environment;
  }

  /** One write of one environment by id that returns nothing; true when it matched (and was announced). */
  private async writeOne(filter: Record<string, unknown>, update: Record<string, unknown>): Promise<boolean> {
    const owner = await this.environments.findOneAndUpdate(filter, update).lean<Owner>().exec();
    if (owner) await this.written(owner.user_id);
    return owner !== null;
  }

  async create(input: NewEnvironment): Promise<Environment> {
    const created = await this.environments.create({
      user_id: input.userId,
      name: input.name,
      slug: input.slug,
      template_id: input.templateId,
      template_name: input.templateName,
      resources: input.resources,
      environment_variables: pairs(input.environmentVariables),
      phase: 'provisioning',
      operation: operationDocument(input.operation),
    });
    await this.written(input.userId);
    return toEnvironment(created.toObject<LeanEnvironment>());
  }

  async findById(id: string): Promise<Environment | null> {
    return asEnvironment.byId(id, (_id) => this.environments.findById(_id));
  }

  /** The environment if it belongs to this user; otherwise null (callers answer 404 either way). */
  async findOwned(id: string, userId: string): Promise<Environment | null> {
    return asEnvironment.byId(id, (_id) => this.environments.findOne({ _id, user_id: userId }));
  }

  async listForUser(userId: string): Promise<Environment[]> {
    return asEnvironment.many(this.environments.find({ user_id: userId }).sort({ created_at: -1, _id: -1 }));
  }

  async listInPhases(phases: readonly Phase[], limit = 1000): Promise<Environment[]> {
    return asEnvironment.many(this.environments.find({ phase: { $in: phases } }).limit(limit));
  }

  /** How many environments are in each phase (for the `devpocket_environments` gauge): one aggregation. */
  async countByPhase(): Promise<Map<string, number>> {
    const groups = await this.environments.aggregate<{ _id: string; count: number }>([{ $group: { _id: '$phase', count: { $sum: 1 } } }]);
    return new Map(groups.map((group) => [group._id, group.count]));
  }

  async existingIds(ids: string[]): Promise<Set<string>> {
    const objectIds = ids.map(objectId).filter((id): id is Types.ObjectId => id !== null);
    return new Set(await asId.many(this.environments.find({ _id: { $in: objectIds }, phase: { $ne: 'terminated' } }, { _id: 1 })));
  }

  /** Moves from one of `from` to a new phase; null when the environment was not in one of them. */
  async transition(id: string, from: readonly Phase[], changes: TransitionChanges, userId?: string): Promise<Environment | null> {
    return this.announced(
      await asEnvironment.byId(id, (_id) => {
        const filter: Record<string, unknown> = { _id, phase: { $in: from } };
        if (userId !== undefined) filter.user_id = userId;
        return this.environments.findOneAndUpdate(filter, { $set: changeSet(changes) }, { returnDocument: 'after' });
      }),
    );
  }

  /**
   * Sets (or, with null, cancels) the action to run once the operation in flight has finished,
   * only while the environment is in one of the phases `from`.
   */
  async queue(id: string, userId: string, from: readonly Phase[], action: QueuedAction | null): Promise<Environment | null> {
    return this.announced(
      await asEnvironment.byId(id, (_id) =>
        this.environments.findOneAndUpdate(
          { _id, user_id: userId, phase: { $in: from } },
          { $set: { queued_action: action } },
          { returnDocument: 'after' },
        ),
      ),
    );
  }

  /** Environments with a queued action, no operation in flight and no change since `before` (a server died in between). */
  async queuedWithoutOperation(before: Date): Promise<Environment[]> {
    const found = await asEnvironment.many(
      this.environments.find({ queued_action: { $in: [...QUEUED_ACTIONS] }, updated_at: { $lt: before } }).limit(200),
    );
    return found.filter((environment) => environment.operation === null);
  }

  /** Drops a queued action that turned out to have nothing to do. */
  async completeQueued(id: string, action: QueuedAction): Promise<void> {
    const _id = objectId(id);
    if (_id) await this.writeOne({ _id, queued_action: action }, { $set: { queued_action: null } });
  }

  /** Records the outcome of operation `operationId`, only if it is still the environment's operation. */
  async completeOperation(id: string, operationId: string, changes: TransitionChanges): Promise<Environment | null> {
    return this.announced(
      await asEnvironment.byId(id, (_id) =>
        this.environments.findOneAndUpdate({ _id, 'operation.id': operationId }, { $set: changeSet(changes) }, { returnDocument: 'after' }),
      ),
    );
  }

  async heartbeat(id: string, operationId: string, now: Date): Promise<boolean> {
    const _id = objectId(id);
    return _id !== null && this.writeOne({ _id, 'operation.id': operationId }, { $set: { 'operation.heartbeat_at': now } });
  }

  /** Takes over an operation whose owner stopped sending heartbeats (crashed server). */
  async claimStaleOperation(id: string, staleOperationId: string, replacement: Operation): Promise<Environment | null> {
    return this.announced(
      await asEnvironment.byId(id, (_id) =>
        this.environments.findOneAndUpdate(
          { _id, 'operation.id': staleOperationId },
          { $set: { operation: operationDocument(replacement) } },
          { returnDocument: 'after' },
        ),
      ),
    );
  }

  async staleOperations(before: Date): Promise<Environment[]> {
    return asEnvironment.many(this.environments.find({ operation: { $ne: null }, 'operation.heartbeat_at': { $lt: before } }).limit(200));
  }

  async updateInstallation(id: string, installation: Installation | null, statusMessage: string | null): Promise<void> {
    const _id = objectId(id);
    if (!_id) return;
    await this.writeOne(
      { _id, phase: 'running' },
      {
        $set: {
          installation: installation && {
            completed: installation.completed,
            failed: installation.failed,
            steps_done: installation.stepsDone,
            steps_total: installation.stepsTotal,
          },
          status_message: statusMessage,
        },
      },
    );
  }

  async updateSettings(
    id: string,
    userId: string,
    set: { name?: string; slug?: string; environmentVariables?: Record<string, string>; resources?: TemplateResources; ports?: number[] },
  ): Promise<Environment | null> {
    const $set: Record<string, unknown> = {};
    if (set.name !== undefined) $set.name = set.name;
    if (set.slug !== undefined) $set.slug = set.slug;
    if (set.environmentVariables !== undefined) $set.environment_variables = pairs(set.environmentVariables);
    if (set.resources !== undefined) $set.resources = set.resources;
    if (set.ports !== undefined) $set.preview_ports = set.ports;
    return this.announced(
      await asEnvironment.byId(id, (_id) =>
        this.environments.findOneAndUpdate(
          { _id, user_id: userId, phase: { $nin: ['terminating', 'terminated'] } },
          { $set },
          { returnDocument: 'after' },
        ),
      ),
    );
  }

  async touch(id: string, now: Date): Promise<void> {
    const _id = objectId(id);
    if (_id) await this.writeOne({ _id }, { $set: { last_accessed: now } });
  }

  /** Purges environments terminated before `before`: those found first, so that their owners can be told. */
  async deleteTerminatedBefore(before: Date): Promise<number> {
    const filter = { phase: 'terminated' as const, terminated_at: { $lt: before } };
    const found = await this.environments.find(filter, { user_id: 1 }).lean<Owner[]>().exec();
    if (found.length === 0) return 0;
    const result = await this.environments.deleteMany({ ...filter, _id: { $in: found.map((record) => record._id) } }).exec();
    await this.written(...found.map((record) => record.user_id));
    return result.deletedCount;
  }

  async deleteAllForUser(userId: string): Promise<void> {
    try {
      await this.environments.deleteMany({ user_id: userId }).exec();
    } finally {
      // Even when it failed part of the way: some records may be gone.
      await this.written(userId);
    }
    await this.quotas.deleteOne({ _id: userId }).exec();
  }

  // ---- quota --------------------------------------------------------------------------------

  /** Takes one of the user's `max` slots; false when all are taken. Atomic across replicas. */
  async reserveSlot(userId: string, max: number): Promise<boolean> {
    try {
      const updated = await this.quotas
        .findOneAndUpdate({ _id: userId, live: { $lt: max } }, { $inc: { live: 1 } }, { upsert: true, returnDocument: 'after' })
        .lean()
        .exec();
      return updated !== null;
    } catch (error) {
      if (isDuplicateKeyError(error)) return false; // the document exists and is full
      throw error;
    }
  }

  async releaseSlot(userId: string): Promise<void> {
    await this.quotas.updateOne({ _id: userId, live: { $gt: 0 } }, { $inc: { live: -1 } }).exec();
  }

  /** Repairs the counter from the environments themselves (reconciler). */
  async recountSlots(userId: string): Promise<number> {
    const live = await this.environments.countDocuments({ user_id: userId, phase: { $ne: 'terminated' } }).exec();
    await this.quotas.updateOne({ _id: userId }, { $set: { live } }, { upsert: true }).exec();
    return live;
  }

  /** Each quota counter with the number of live environments it should hold. */
  async quotaDisagreements(): Promise<{ userId: string; counted: number; live: number }[]> {
    const counters = await this.quotas.find({}).lean<EnvironmentQuotaRecord[]>().exec();
    const result: { userId: string; counted: number; live: number }[] = [];
    for (const counter of counters) {
      const live = await this.environments.countDocuments({ user_id: counter._id, phase: { $ne: 'terminated' } }).exec();
      if (live !== counter.live) result.push({ userId: counter._id, counted: counter.live, live });
    }
    return result;
  }
}
