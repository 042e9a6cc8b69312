import { Logger } from '@nestjs/common';
import { eventually } from '../../../test/support/eventually.js';
import { DomainEvents } from './domain-events.js';
import { ReplicaBus, type ReplicaReceiver, SingleProcessBus } from './replica-bus.js';

/** Replicas joined by an in-memory "Redis": what one publishes reaches the others that are connected, asynchronously. */
class FakeNetwork {
  readonly buses: FakeBus[] = [];

  replica(): { bus: FakeBus; events: DomainEvents } {
    const bus = new FakeBus(this);
    this.buses.push(bus);
    return { bus, events: new DomainEvents(bus) };
  }
}

class FakeBus extends ReplicaBus {
  private receive: ReplicaReceiver = () => undefined;
  private connected = true;
  private gen = 0;
  private readonly resync: (() => void)[] = [];
  readonly published: string[] = [];

  constructor(private readonly network: FakeNetwork) {
    super();
  }

  async publish(name: string, payload: unknown): Promise<void> {
    this.published.push(name);
    for (const other of this.network.buses) {
      if (other === this || !other.connected) continue;
      setImmediate(() => other.receive(name, structuredClone(payload)));
    }
  }

  listen(receive: ReplicaReceiver): void {
    this.receive = receive;
  }

  get inSync(): boolean {
    return this.connected;
  }

  get generation(): number {
    return this.gen;
  }

  onResync(listener: () => void): void {
    this.resync.push(listener);
  }

  disconnect(): void {
    this.connected = false;
    this.gen += 1;
  }

  reconnect(): void {
    this.connected = true;
    this.gen += 1;
    for (const listener of this.resync) listener();
  }
}

/** An await that lets other work (timers included) run in between. */
const later = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

describe('DomainEvents', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose', 'fatal']));

  it('in one process: every handler runs, awaited, in order; nothing is sent anywhere', async () => {
    const events = new DomainEvents(new SingleProcessBus());
    const seen: string[] = [];
    events.on('user.deactivated', async ({ userId }) => {
      await later();
      seen.push(`effect ${userId}`);
    });
    events.on('user.deactivated', ({ userId }) => void seen.push(`state ${userId}`), { everyReplica: true });
    await events.emit('user.deactivated', { userId: 'u1' });
    expect(seen).toEqual(['effect u1', 'state u1']);
    expect(events.inSync).toBe(true);
  });

  it('runs every handler on the emitting replica and only everyReplica handlers elsewhere, never twice', async () => {
    const network = new FakeNetwork();
    const replicas = [network.replica(), network.replica(), network.replica()];
    const runs: string[] = [];
    replicas.forEach(({ events }, i) => {
      events.on('user.deleting', () => void runs.push(`${i}: effect`));
      events.on('user.deleting', () => void runs.push(`${i}: state`), { everyReplica: true });
    });

    await replicas[1].events.emit('user.deleting', { userId: 'u1' });
    // Awaited where it was emitted…
    expect(runs).toEqual(['1: effect', '1: state']);
    // …and on receipt elsewhere: the effect ran once in the whole cluster, the state once per replica.
    await eventually(() => expect([...runs].sort()).toEqual(['0: state', '1: effect', '1: state', '2: state']), 2_000, 5);
    expect(replicas[1].bus.published).toEqual(['user.deleting']);
  });

  it('rejects the emitter with the first failure of its own handlers; a failure elsewhere is logged and the next handler runs', async () => {
    const network = new FakeNetwork();
    const [a, b] = [network.replica(), network.replica()];
    const ran: string[] = [];
    for (const { events } of [a, b]) {
      events.on(
        'auth.sessions_revoked',
        () => {
          throw new Error('boom');
        },
        { everyReplica: true },
      );
      events.on('auth.sessions_revoked', () => void ran.push('second'), { everyReplica: true });
    }
    await expect(a.events.emit('auth.sessions_revoked', { userId: 'u1', reason: 'logout' })).rejects.toThrow('boom');
    // The emitter stopped at its failing handler; the other replica ran the next one anyway.
    await eventually(() => expect(ran).toEqual(['second']), 2_000, 5);
  });

  it('handles the events of other replicas one after the other, in arrival order', async () => {
    const network = new FakeNetwork();
    const [a, b] = [network.replica(), network.replica()];
    const order: string[] = [];
    b.events.on(
      'environment.phase_changed',
      async ({ phase }) => {
        order.push(`start ${phase}`);
        await later();
        order.push(`end ${phase}`);
      },
      { everyReplica: true },
    );
    for (const phase of ['stopping', 'stopped']) {
      await a.events.emit('environment.phase_changed', { environmentId: 'e1', userId: 'u1', phase, status: phase, statusMessage: null });
    }
    await eventually(() => expect(order).toEqual(['start stopping', 'end stopping', 'start stopped', 'end stopped']), 2_000, 5);
  });

  it('says whether it hears the other replicas, in which generation, and when it does again', async () => {
    const network = new FakeNetwork();
    const [a, b] = [network.replica(), network.replica()];
    const resyncs: number[] = [];
    b.events.onResync(() => resyncs.push(b.events.syncGeneration));
    const heard: string[] = [];
    b.events.on('user.changed', ({ userId }) => void heard.push(userId), { everyReplica: true });

    expect(b.events.inSync).toBe(true);
    const before = b.events.syncGeneration;
    b.bus.disconnect();
    expect(b.events.inSync).toBe(false);
    await a.events.emit('user.changed', { userId: 'missed' });
    b.bus.reconnect();
    await a.events.emit('user.changed', { userId: 'heard' });
    await eventually(() => expect(heard).toEqual(['heard']), 2_000, 5);
    expect(b.events.inSync).toBe(true);
    expect(b.events.syncGeneration).toBe(before + 2);
    expect(resyncs).toEqual([before + 2]);
  });

  it('deliverFromReplica runs this process`s everyReplica handlers only, as if the event came from elsewhere', async () => {
    const events = new DomainEvents(new SingleProcessBus());
    const ran: string[] = [];
    events.on('auth.sessions_revoked', () => void ran.push('effect'));
    events.on('auth.sessions_revoked', () => void ran.push('state'), { everyReplica: true });
    await events.deliverFromReplica('auth.sessions_revoked', { userId: 'u1', sessionId: 's1', reason: 'ended_elsewhere' });
    expect(ran).toEqual(['state']);
  });
});
