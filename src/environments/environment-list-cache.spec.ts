import { randomUUID } from 'node:crypto';
import { getModelToken, MongooseModule } from '@nestjs/mongoose';
import { Test, type TestingModule } from '@nestjs/testing';
import type { Model } from 'mongoose';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { ReplicaBus, SingleProcessBus } from '../common/events/replica-bus.js';
import type { Operation, OperationKind } from './environment.js';
import { EnvironmentListCache } from './environment-list-cache.js';
import { EnvironmentsRepository, type NewEnvironment } from './environments.repository.js';
import { EnvironmentQuotaRecord, EnvironmentQuotaSchema, EnvironmentRecord, EnvironmentSchema } from './schemas/environment.schema.js';

/** The repository's methods that only read environment records, or write only the quota counters. */
const NOT_ENVIRONMENT_WRITES = [
  'findById',
  'findOwned',
  'listForUser',
  'listInPhases',
  'countByPhase',
  'existingIds',
  'queuedWithoutOperation',
  'staleOperations',
  'reserveSlot',
  'releaseSlot',
  'recountSlots',
  'quotaDisagreements',
];
/** Its own helpers for announcing writes. */
const HELPERS = ['written', 'announced', 'writeOne'];

const operation = (kind: OperationKind): Operation => ({ id: randomUUID(), kind, startedAt: new Date(), heartbeatAt: new Date() });

/**
 * The list cache against the real repository and database: every write of an environment record,
 * by whichever method, drops its owner's list (and only that), so the next list is read again and
 * equals the database's.
 */
describe('EnvironmentListCache', () => {
  let database: TestDatabase;
  let moduleRef: TestingModule;
  let repository: EnvironmentsRepository;
  let cache: EnvironmentListCache;
  let events: DomainEvents;
  let bus: SingleProcessBus;

  beforeAll(async () => {
    database = createTestDatabase('env_list_cache');
    bus = new SingleProcessBus();
    moduleRef = await Test.createTestingModule({
      imports: [
        MongooseModule.forRoot(database.serverUri, { dbName: database.name }),
        MongooseModule.forFeature([
          { name: EnvironmentRecord.name, schema: EnvironmentSchema },
          { name: EnvironmentQuotaRecord.name, schema: EnvironmentQuotaSchema },
        ]),
      ],
      providers: [EnvironmentsRepository, EnvironmentListCache, DomainEvents, { provide: ReplicaBus, useValue: bus }],
    }).compile();
    await moduleRef.init();
    repository = moduleRef.get(EnvironmentsRepository);
    cache = moduleRef.get(EnvironmentListCache);
    events = moduleRef.get(DomainEvents);
  });

  afterAll(async () => {
    await moduleRef?.close();
    await database?.drop();
  });

  afterEach(() => vi.restoreAllMocks());

  const newEnvironment = (userId: string, kind: OperationKind = 'provision'): NewEnvironment => ({
    userId,
    name: 'Cached',
    slug: 'cached',
    templateId: 'debian',
    templateName: 'debian',
    resources: { cpu: '1', memory: '1Gi', storage: '5Gi' },
    environmentVariables: { A: '1' },
    operation: operation(kind),
  });

  it('reads a list once, then serves it frozen to every caller', async () => {
    const userId = randomUUID();
    await repository.create(newEnvironment(userId));
    const before = cache.counts;
    const first = await cache.listForUser(userId);
    const second = await cache.listForUser(userId);
    expect(second).toBe(first);
    expect(cache.counts.misses - before.misses).toBe(1);
    expect(cache.counts.hits - before.hits).toBe(1);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first[0].resources)).toBe(true);
    expect(() => ((first[0].resources as { cpu: string }).cpu = '2')).toThrow(TypeError);
    expect(await cache.listForUser(randomUUID())).toEqual([]);
  });

  it("drops the owner's list on every write of an environment record, and only the owner's", async () => {
    const owner = randomUUID();
    const bystander = randomUUID();
    await repository.create(newEnvironment(bystander));
    const covered = new Set<string>();

    /** Runs one write through `method`; the owner's next list is read again and equals the database's, the bystander's is not. */
    const expectDropped = async (method: keyof EnvironmentsRepository, write: () => Promise<unknown>): Promise<void> => {
      await cache.listForUser(owner);
      await cache.listForUser(bystander);
      const before = cache.counts;
      await write();
      const listed = await cache.listForUser(owner);
      await cache.listForUser(bystander);
      expect({ method, misses: cache.counts.misses - before.misses }).toEqual({ method, misses: 1 });
      expect(listed).toEqual(await repository.listForUser(owner));
      covered.add(method);
    };

    const created = newEnvironment(owner);
    const env = await repository.create(created);
    await expectDropped('create', () => repository.create(newEnvironment(owner, 'start')));
    await expectDropped('heartbeat', () => repository.heartbeat(env.id, created.operation.id, new Date()));
    const replacement = operation('provision');
    await expectDropped('claimStaleOperation', () => repository.claimStaleOperation(env.id, created.operation.id, replacement));
    await expectDropped('completeOperation', () =>
      repository.completeOperation(env.id, replacement.id, { phase: 'running', operation: null, startedAt: new Date() }),
    );
    await expectDropped('updateInstallation', () =>
      repository.updateInstallation(env.id, { completed: false, failed: false, stepsDone: 1, stepsTotal: 3 }, 'installing'),
    );
    await expectDropped('updateSettings', () => repository.updateSettings(env.id, owner, { name: 'Renamed', ports: [8080] }));
    await expectDropped('touch', () => repository.touch(env.id, new Date()));
    await expectDropped('queue', () => repository.queue(env.id, owner, ['running'], 'stop'));
    await expectDropped('completeQueued', () => repository.completeQueued(env.id, 'stop'));
    const longAgo = new Date(Date.now() - 86_400_000);
    await expectDropped('transition', () => repository.transition(env.id, ['running'], { phase: 'terminated', terminatedAt: longAgo }));
    await expectDropped('deleteTerminatedBefore', () => repository.deleteTerminatedBefore(new Date(longAgo.getTime() + 1)));
    expect((await cache.listForUser(owner)).map((environment) => environment.id)).not.toContain(env.id);
    await expectDropped('deleteAllForUser', () => repository.deleteAllForUser(owner));
    expect(await cache.listForUser(owner)).toEqual([]);

    // A write that matched nothing changed nothing: the list stays.
    await cache.listForUser(bystander);
    const before = cache.counts;
    expect(await repository.heartbeat(env.id, randomUUID(), new Date())).toBe(false);
    await cache.listForUser(bystander);
    expect(cache.counts.misses).toBe(before.misses);

    // Every method of the repository is either covered above or writes no environment record.
    const methods = Object.getOwnPropertyNames(EnvironmentsRepository.prototype).filter((name) => name !== 'constructor');
    expect(methods.filter((name) => !HELPERS.includes(name) && !NOT_ENVIRONMENT_WRITES.includes(name)).sort()).toEqual([...covered].sort());
  });

  it('drops a list when another replica announces a write', async () => {
    const userId = randomUUID();
    const { id } = await repository.create(newEnvironment(userId));
    expect(await cache.listForUser(userId)).toHaveLength(1);
    // Renamed by another replica (straight in the database here): this process only hears of it.
    const records = moduleRef.get<Model<EnvironmentRecord>>(getModelToken(EnvironmentRecord.name));
    await records.updateOne({ _id: id }, { $set: { name: 'Elsewhere' } }).exec();
    expect((await cache.listForUser(userId))[0].name).toBe('Cached');
    await events.deliverFromReplica('environment.written', { userId });
    expect((await cache.listForUser(userId))[0].name).toBe('Elsewhere');
  });

  it('reads the database on every list while invalidations cannot be trusted, and forgets what it held before the gap', async () => {
    const userId = randomUUID();
    await repository.create(newEnvironment(userId));
    await cache.listForUser(userId);
    const inSync = vi.spyOn(bus, 'inSync', 'get').mockReturnValue(false);
    const generation = vi.spyOn(bus, 'generation', 'get').mockReturnValue(1);
    const before = cache.counts;
    await cache.listForUser(userId);
    await cache.listForUser(userId);
    expect(cache.counts.bypassed - before.bypassed).toBe(2);
    inSync.mockReturnValue(true);
    generation.mockReturnValue(2);
    await cache.listForUser(userId);
    await cache.listForUser(userId);
    expect(cache.counts.misses - before.misses).toBe(1);
    expect(cache.counts.hits - before.hits).toBe(1);
  });
});
