import { WebSocket } from 'ws';
import { createEnvironmentsApp, EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import type { TestAccount } from '../support/accounts.js';
import { StatusClient } from './status-client.js';

/** The status socket `/api/v1/ws/environments` on one server: what an owner sees live, and what nobody else does. */
describe('the environment status WebSocket', () => {
  let app: EnvironmentsApp;
  const clients: StatusClient[] = [];
  beforeAll(async () => (app = await createEnvironmentsApp()), 120_000);
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });
  afterAll(() => app?.close(), 120_000);

  const open = (token?: string): StatusClient => {
    const client = StatusClient.open(app.baseUrl, token);
    clients.push(client);
    return client;
  };
  const api = <T>(method: string, path: string, account: TestAccount, body?: unknown) =>
    app.json<T>(method, `/api/v1/environments${path}`, { token: account.tokens.access_token, body });

  it('sends a snapshot, then create, start, stop and delete as they happen; never another user’s', async () => {
    const owner = await app.account('pro');
    const stranger = await app.account('free');
    const existing = await app.createRunning(owner, { name: 'Already There' });
    const mine = open(owner.tokens.access_token);
    const theirs = open(stranger.tokens.access_token);
    expect((await mine.snapshot()).map((environment) => environment.id)).toEqual([existing.id]);
    expect(await theirs.snapshot()).toEqual([]);

    const created = await api<EnvironmentBody>('POST', '/', owner, { name: 'Live One', template: 'debian' });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const first = await mine.waitFor((m) => m.type === 'environment' && m.environment.id === id, 'created');
    expect(first).toMatchObject({ type: 'environment', event: 'created', environment: { id, status: 'creating', name: 'Live One' } });
    const running = await mine.phase(id, 'running');
    expect(running).toMatchObject({ environment: { status: 'running', queued_action: null } });

    expect((await api('POST', `/${id}/stop`, owner)).status).toBeLessThan(300);
    await mine.phase(id, 'stopping');
    await mine.phase(id, 'stopped');
    expect((await api('POST', `/${id}/start`, owner)).status).toBeLessThan(300);
    await mine.phase(id, 'starting');
    const order = mine.messages.length;
    await mine.waitFor(
      (m) => m.type === 'environment' && m.environment.id === id && m.environment.phase === 'running' && mine.messages.indexOf(m) >= order,
      'running again',
    );

    expect((await api('PUT', `/${id}`, owner, { name: 'Renamed' })).status).toBe(200);
    await mine.waitFor((m) => m.type === 'environment' && m.environment.id === id && m.environment.name === 'Renamed', 'renamed');

    expect((await api('DELETE', `/${id}`, owner)).status).toBeLessThan(300);
    await mine.phase(id, 'terminated');
    await mine.waitFor((m) => m.type === 'deleted' && m.id === id, 'deleted');

    // The stranger's socket, open all along, heard of none of it (its own change arrives; nothing before it).
    const own = await app.createRunning(stranger, { name: 'Stranger’s' });
    await theirs.phase(own.id, 'running');
    expect([...theirs.environmentIds]).toEqual([own.id]);
    expect(mine.environmentIds.has(own.id)).toBe(false);
  }, 90_000);

  it('sends the same changes to every socket of the owner, each in order', async () => {
    const owner = await app.account('free');
    const a = open(owner.tokens.access_token);
    const b = open(owner.tokens.access_token);
    await Promise.all([a.snapshot(), b.snapshot()]);
    const env = await app.createRunning(owner);
    await Promise.all([a.phase(env.id, 'running'), b.phase(env.id, 'running')]);
    const phases = (client: StatusClient) =>
      client.messages.flatMap((m) => (m.type === 'environment' && m.environment.id === env.id ? [m.environment.phase] : []));
    expect(phases(a)[0]).toBe('provisioning');
    expect(phases(a).at(-1)).toBe('running');
    // Never an older phase after a newer one.
    expect(phases(a).indexOf('provisioning')).toBeLessThan(phases(a).indexOf('running'));
    expect(phases(b).lastIndexOf('provisioning')).toBeLessThan(phases(b).indexOf('running'));
  }, 90_000);

  it('sends the installation progress of a python environment until its startup script has finished', async () => {
    const owner = await app.account('pro');
    const client = open(owner.tokens.access_token);
    await client.snapshot();
    const created = await api<EnvironmentBody>('POST', '/', owner, { name: 'Installing', template: 'python' });
    expect(created.status).toBe(201);
    const done = await client.waitFor(
      (m) => m.type === 'environment' && m.environment.id === created.body.id && m.environment.installation_completed,
      'installation completed',
      120_000,
    );
    expect(done).toMatchObject({ environment: { installation_progress: 100, phase: 'running' } });
    // Each message is the whole record as it then was: the progress never goes back.
    const progress = client.messages.flatMap((m) =>
      m.type === 'environment' && m.environment.id === created.body.id && m.environment.installation_progress !== null
        ? [m.environment.installation_progress]
        : [],
    );
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  }, 150_000);

  it('refuses a missing, refresh or invalid token with 4001, by each way the terminal accepts one', async () => {
    const owner = await app.account('free');
    const anonymous = open();
    expect(await anonymous.closed).toBe(4001);
    expect(anonymous.messages[0]).toMatchObject({ type: 'error', code: 4001 });
    expect(await open(owner.tokens.refresh_token).closed).toBe(4001);
    expect(await open('not-a-token').closed).toBe(4001);

    const url = `${app.baseUrl.replace('http', 'ws')}/api/v1/ws/environments`;
    const firstMessage = (socket: WebSocket) =>
      new Promise<{ type: string }>((resolve, reject) => {
        socket.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as { type: string }));
        socket.once('error', reject);
      });
    const byHeader = new WebSocket(url, { headers: { authorization: `Bearer ${owner.tokens.access_token}` } });
    const byProtocol = new WebSocket(url, [`bearer.${owner.tokens.access_token}`]);
    try {
      expect(await firstMessage(byHeader)).toMatchObject({ type: 'snapshot' });
      expect(await firstMessage(byProtocol)).toMatchObject({ type: 'snapshot' });
    } finally {
      byHeader.terminate();
      byProtocol.terminate();
    }
  }, 90_000);

  it('closes with 4001 when the sign-in session ends', async () => {
    const owner = await app.account('free');
    const client = open(owner.tokens.access_token);
    await client.snapshot();
    expect((await app.json('POST', '/api/v1/auth/logout', { token: owner.tokens.access_token })).status).toBe(200);
    expect(await client.closed).toBe(4001);
  }, 90_000);
});
