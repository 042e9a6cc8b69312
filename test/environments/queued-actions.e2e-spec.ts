import { vi } from 'vitest';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import type { TestAccount } from '../support/accounts.js';
import { createEnvironmentsApp, EnvironmentBody, EnvironmentsApp } from '../support/environments.js';

type Body = EnvironmentBody & { queued_action: 'start' | 'stop' | null };

/** Holds every call of the runtime's `method` until released, so a phase in flight lasts as long as the test needs. */
function gate(app: EnvironmentsApp, method: 'stop' | 'start'): { entered: Promise<void>; release: () => void } {
  let release!: () => void;
  let entered!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const reached = new Promise<void>((resolve) => (entered = resolve));
  const runtime = app.runtime;
  const original = runtime[method].bind(runtime);
  const spy = vi.spyOn(runtime, method).mockImplementation(async (spec: EnvironmentSpec) => {
    entered();
    await released;
    return original(spec);
  });
  return {
    entered: reached,
    release: () => {
      spy.mockRestore();
      release();
    },
  };
}

/** The `[runtime] …` lifecycle lines of the environment's log, in order. */
async function lifecycle(app: EnvironmentsApp, account: TestAccount, id: string): Promise<string[]> {
  const res = await app.json<{ logs: string[] }>('GET', `/api/v1/environments/${id}/logs?lines=1000`, {
    token: account.tokens.access_token,
  });
  return res.body.logs.map((line) => /\[runtime\] (started|stopped)/.exec(line)?.[1]).filter((word): word is string => word !== undefined);
}

describe('a start while stopping, a stop while starting', () => {
  let app: EnvironmentsApp;
  beforeAll(async () => (app = await createEnvironmentsApp()), 120_000);
  afterAll(() => app?.close(), 120_000);

  const post = (account: TestAccount, id: string, action: string) =>
    app.json<Body>('POST', `/api/v1/environments/${id}/${action}`, { token: account.tokens.access_token });

  it('accepts a start while the environment is stopping (shown as stopped) and runs it once the stop has finished', async () => {
    const account = await app.account('free');
    const env = await app.createRunning(account);
    const held = gate(app, 'stop');
    const stop = await post(account, env.id, 'stop');
    expect(stop.status).toBe(202);
    await held.entered;

    const start = await post(account, env.id, 'start');
    expect(start.status).toBe(202);
    expect(start.body).toMatchObject({ status: 'stopped', phase: 'stopping', queued_action: 'start' });
    // Asking again changes nothing.
    expect((await post(account, env.id, 'start')).body).toMatchObject({ phase: 'stopping', queued_action: 'start' });

    held.release();
    const running = await app.waitForPhase(account, env.id, 'running');
    expect(running.status).toBe('running');
    expect((running as Body).queued_action).toBeNull();
    expect(await lifecycle(app, account, env.id)).toEqual(['started', 'stopped', 'started']);
  });

  /** A stopped environment whose start is under way and held until `release()`. */
  async function startingAndHeld(): Promise<{ account: TestAccount & { id: string }; id: string; release: () => void }> {
    const account = await app.account('free');
    const env = await app.createRunning(account);
    expect((await post(account, env.id, 'stop')).status).toBe(202);
    await app.waitForPhase(account, env.id, 'stopped');
    const held = gate(app, 'start');
    expect((await post(account, env.id, 'start')).status).toBe(202);
    await held.entered;
    return { account, id: env.id, release: held.release };
  }

  it('accepts a stop while the environment is starting (shown as creating) and stops it once it runs', async () => {
    const { account, id, release } = await startingAndHeld();
    const stop = await post(account, id, 'stop');
    expect(stop.status).toBe(202);
    expect(stop.body).toMatchObject({ status: 'creating', phase: 'starting', queued_action: 'stop' });

    release();
    await app.service.idle();
    const stopped = await app.waitForPhase(account, id, 'stopped');
    expect((stopped as Body).queued_action).toBeNull();
    expect(await lifecycle(app, account, id)).toEqual(['started', 'stopped', 'started', 'stopped']);
  });

  it('a start after a queued stop cancels it: the environment ends running, started once', async () => {
    const { account, id, release } = await startingAndHeld();
    expect((await post(account, id, 'stop')).body.queued_action).toBe('stop');
    const start = await post(account, id, 'start');
    expect(start.status).toBe(202);
    expect(start.body).toMatchObject({ phase: 'starting', queued_action: null });

    release();
    await app.service.idle();
    expect((await app.waitForPhase(account, id, 'running')).phase).toBe('running');
    expect(await lifecycle(app, account, id)).toEqual(['started', 'stopped', 'started']);
  });

  it('still refuses what no operation in flight can lead to: a start of a running environment is 409', async () => {
    const account = await app.account('free');
    const env = await app.createRunning(account);
    const res = await post(account, env.id, 'start');
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ status: 'running', phase: 'running' });
  });

  it('a queued start left behind by a server that stopped is run by the reconciler', async () => {
    const account = await app.account('free');
    const env = await app.createRunning(account);
    expect((await post(account, env.id, 'stop')).status).toBe(202);
    await app.waitForPhase(account, env.id, 'stopped');
    // What a server that died between finishing a stop and starting its queued start leaves behind.
    const { EnvironmentsRepository } = await import('../../src/environments/environments.repository.js');
    const repository = app.app.get(EnvironmentsRepository);
    expect(await repository.queue(env.id, account.id, ['stopped'], 'start')).not.toBeNull();
    app.clock.advanceSeconds(120);
    await app.reconciler.reconcile();
    await app.service.idle();
    expect((await app.waitForPhase(account, env.id, 'running')).phase).toBe('running');
  });
});
