import type { Logger } from '@nestjs/common';
import type { RuntimeState, RuntimeStatus } from './runtime.provider.js';
import { StatusWatch } from './status-watch.js';

const status = (state: RuntimeState, message: string | null = null): RuntimeStatus => ({ state, message, installation: null });
const logged: string[] = [];
const logger = { error: (message: string) => logged.push(message) } as unknown as Logger;

function setup(reportUnseenAbsent = false): { watch: StatusWatch; source: { starts: number; stops: number } } {
  const source = { starts: 0, stops: 0 };
  const watch = new StatusWatch(logger, { start: () => (source.starts += 1), stop: () => (source.stops += 1) }, { reportUnseenAbsent });
  return { watch, source };
}

describe('StatusWatch', () => {
  it('starts its source with the first listener and stops it when the last one leaves, for good once closed', () => {
    const { watch, source } = setup();
    const one = watch.subscribe(() => undefined);
    const two = watch.subscribe(() => undefined);
    expect(source).toEqual({ starts: 1, stops: 0 });
    one();
    expect(source.stops).toBe(0);
    two();
    expect(source).toEqual({ starts: 1, stops: 1 });
    expect(watch.listening).toBe(false);
    watch.subscribe(() => undefined);
    expect(source.starts).toBe(2);
    watch.close();
    watch.subscribe(() => undefined);
    expect(source.starts).toBe(2);
  });

  it('reports only changes; a first sighting only when announced; absent forgets the environment', async () => {
    const { watch } = setup();
    const seen: [string, RuntimeState][] = [];
    watch.subscribe((id, s) => seen.push([id, s.state]));
    await watch.observe('a', async () => status('running'), false);
    expect(seen).toEqual([]);
    expect(watch.seenIds()).toEqual(['a']);
    await watch.observe('a', async () => status('running'), true);
    await watch.observe('a', async () => status('stopped'), false);
    await watch.observe('b', async () => status('pending'), true);
    await watch.observe('a', async () => status('absent'), true);
    await watch.observe('c', async () => status('absent'), true);
    expect(seen).toEqual([
      ['a', 'stopped'],
      ['b', 'pending'],
      ['a', 'absent'],
    ]);
    expect(watch.seenIds()).toEqual(['b']);
  });

  it('can report an absent environment it never saw (the Kubernetes runtime)', async () => {
    const { watch } = setup(true);
    const seen: RuntimeState[] = [];
    watch.subscribe((_id, s) => seen.push(s.state));
    await watch.observe('c', async () => status('absent'), true);
    await watch.observe('d', async () => status('absent'), false);
    expect(seen).toEqual(['absent']);
  });

  it('observes one at a time in order, skips null reads, survives failing reads and listeners', async () => {
    const { watch } = setup();
    const seen: string[] = [];
    watch.subscribe(() => {
      throw new Error('a broken listener');
    });
    watch.subscribe((_id, s) => seen.push(s.message ?? ''));
    let release!: () => void;
    const slow = watch.observe(
      'a',
      () => new Promise<RuntimeStatus>((resolve) => (release = () => resolve(status('running', 'older')))),
      true,
    );
    const fast = watch.observe('a', async () => status('running', 'newer'), true);
    await Promise.resolve();
    release();
    await Promise.all([slow, fast]);
    expect(seen).toEqual(['older', 'newer']);
    await expect(watch.observe('a', () => Promise.reject(new Error('unreadable')), true)).rejects.toThrow('unreadable');
    await watch.observe('a', async () => null, true);
    await watch.observe('a', async () => status('stopped', 'after'), true);
    expect(seen).toEqual(['older', 'newer', 'after']);
    expect(logged).toEqual(Array(3).fill('A runtime watcher failed: a broken listener'));
  });

  it('does not read while nobody listens', async () => {
    const { watch } = setup();
    let reads = 0;
    await watch.observe(
      'a',
      async () => {
        reads += 1;
        return status('running');
      },
      true,
    );
    expect(reads).toBe(0);
  });
});
