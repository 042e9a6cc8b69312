import { rmSync } from 'node:fs';
import { WebSocket } from 'ws';
import { EnvironmentsRepository } from '../../src/environments/environments.repository.js';
import { UsersService } from '../../src/users/users.service.js';
import { createEnvironmentsApp } from '../support/environments.js';
import { terminalSuite } from '../support/terminal-suite.js';
import { eventually } from '../support/eventually.js';
import { TerminalTestClient } from '../support/terminal-client.js';
import type { TestAccount } from '../support/accounts.js';

/** Every rejection and abuse case has its own close code, and never disturbs another client. */
describe('terminal rejections and abuse', () => {
  const t = terminalSuite('Rejections', { TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT: '3', TERMINAL_MAX_CONNECTIONS_PER_USER: '4' });
  const connect = t.connect;

  const rejected = async (
    options: Parameters<typeof TerminalTestClient.connect>[2],
    id = t.env.id,
  ): Promise<{ code: number; message: string }> => {
    const client = await connect(options, id);
    const { code } = await client.closed;
    const error = client.frames.find((f) => f.type === 'error');
    return { code, message: String(error?.message ?? '') };
  };

  it('4001 without a token, with a bad token, and with a refresh token', async () => {
    const anonymous = await rejected({ token: undefined });
    expect(anonymous.code).toBe(4001);
    expect(anonymous.message).toMatch(/Authentication required/);
    expect((await rejected({ token: 'not-a-token' })).code).toBe(4001);
    expect((await rejected({ token: t.owner.tokens.refresh_token })).code).toBe(4001);
  });

  it("4004 for another user's environment and for an unknown one", async () => {
    const stranger = await t.app.account('free');
    expect(await rejected({ token: stranger.tokens.access_token })).toMatchObject({ code: 4004, message: 'Environment not found' });
    expect((await rejected({}, '000000000000000000000000')).code).toBe(4004);
    expect((await rejected({}, 'not-an-id')).code).toBe(4004);
  });

  it('4009 for an environment that is not running', async () => {
    const other = await t.app.account('free');
    const stopped = await t.app.createRunning(other, { name: 'Stopped one' });
    await t.app.json('POST', `/api/v1/environments/${stopped.id}/stop`, { token: other.tokens.access_token });
    await t.app.waitForPhase(other, stopped.id, 'stopped');
    const client = await TerminalTestClient.connect(t.app.baseUrl, stopped.id, { token: other.tokens.access_token });
    t.track(client);
    expect((await client.closed).code).toBe(4009);
    expect(client.frames[0]).toMatchObject({ type: 'error', message: 'The environment is stopped; start it first' });
  });

  it('4029 beyond the per-environment limit, while connected clients go on', async () => {
    const a = await connect();
    const b = await connect();
    const c = await connect();
    // admitted in whatever order the server finished checking them: wait until all three are in
    await Promise.all([a, b, c].map((x) => x.waitForFrame((f) => f.type === 'welcome')));
    expect(await rejected({})).toEqual({ code: 4029, message: 'This environment already has 3 terminal connections' });
    a.run('echo still-here-$((2+3))');
    await a.waitForScreen(/still-here-5/);
  });

  it('4029 beyond the per-user limit over all of the user’s environments, while connected clients go on', async () => {
    const second = await t.app.createRunning(t.owner, { name: 'Second one' });
    const onFirst = [await connect(), await connect()];
    const onSecond = [await connect({}, second.id), await connect({}, second.id)];
    await Promise.all([...onFirst, ...onSecond].map((x) => x.waitForFrame((f) => f.type === 'welcome')));
    // The second environment has room (2 of 3), the user has none (4 of 4).
    expect(await rejected({}, second.id)).toEqual({ code: 4029, message: 'You already have 4 terminal connections open' });
    onSecond[0].run('echo still-here-$((3+4))');
    await onSecond[0].waitForScreen(/still-here-7/);
  });

  it('malformed frames get an error; repeated abuse closes that client only (4008)', async () => {
    const good = await connect();
    const bad = await connect();
    await good.waitForFrame((f) => f.type === 'welcome');
    await bad.waitForFrame((f) => f.type === 'welcome');
    bad.socket.send('{not json');
    await bad.waitForFrame((f) => f.type === 'error' && /not JSON/.test(String(f.message)));
    bad.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    await bad.waitForFrame((f) => f.type === 'error' && /Binary frames/.test(String(f.message)));
    bad.send({ type: 'resize', cols: 5000, rows: 10 });
    bad.send({ type: 'input', data: 'x'.repeat(70_000) });
    bad.send({ type: 'teleport' });
    for (let i = 0; i < 10; i += 1) bad.socket.send('[]');
    expect((await bad.closed).code).toBe(4008);
    good.run('echo unaffected-$((4+4))');
    await good.waitForScreen(/unaffected-8/);
  });

  it('closes terminals opened with a session that signs out (4001); other sessions keep theirs', async () => {
    const other = await t.app.account('free');
    const target = await t.app.createRunning(other, { name: 'Sign out' });
    const second = await t.app.json<TestAccount['tokens']>('POST', '/api/v1/auth/login', {
      body: { username_or_email: other.username, password: other.password },
      ip: '10.50.50.50',
    });
    const first = await TerminalTestClient.connect(t.app.baseUrl, target.id, { token: other.tokens.access_token });
    const kept = await TerminalTestClient.connect(t.app.baseUrl, target.id, { token: second.body.access_token });
    t.track(first);
    t.track(kept);
    await first.waitForFrame((f) => f.type === 'welcome');
    await kept.waitForFrame((f) => f.type === 'welcome');
    await t.app.json('POST', '/api/v1/auth/logout', { token: other.tokens.access_token });
    expect((await first.closed).code).toBe(4001);
    kept.run('echo kept-$((5*5))');
    await kept.waitForScreen(/kept-25/);

    // deactivating the account ends every terminal of it
    await t.app.app
      .get(UsersService)
      .updateAsAdmin(other.id, { isActive: false }, { id: t.owner.id, username: t.owner.username, ip: null });
    expect((await kept.closed).code).toBe(4001);
  });

  it('tells clients when the environment stops, then closes them with 4009', async () => {
    const other = await t.app.account('free');
    const target = await t.app.createRunning(other, { name: 'Stops while watched' });
    const client = await TerminalTestClient.connect(t.app.baseUrl, target.id, { token: other.tokens.access_token });
    t.track(client);
    await client.waitForFrame((f) => f.type === 'welcome');
    await t.app.json('POST', `/api/v1/environments/${target.id}/stop`, { token: other.tokens.access_token });
    await client.waitForFrame((f) => f.type === 'status' && f.phase === 'stopping');
    expect((await client.closed).code).toBe(4009);
  });

  it('closes with 1001 when the server shuts down, leaving the tmux session running', async () => {
    const other = await createEnvironmentsApp();
    const user = await other.account('free');
    const target = await other.createRunning(user, { name: 'Shutdown' });
    const record = await other.app.get(EnvironmentsRepository).findById(target.id);
    const spec = await other.service.specFor(record!);
    const client = await TerminalTestClient.connect(other.baseUrl, target.id, { token: user.tokens.access_token });
    await client.waitForFrame((f) => f.type === 'welcome');
    client.run('echo before-shutdown');
    await client.waitForScreen(/before-shutdown/);
    const closing = other.app.close();
    expect((await client.closed).code).toBe(1001);
    await closing;
    // the environment's tmux server outlives the API server
    expect((await other.runtime.status(spec)).state).toBe('running');
    await other.runtime.destroy(spec);
    await other.database.drop();
    rmSync(other.configuration.app.dataDir, { recursive: true, force: true });
  });

  it('answers a path that is not a WebSocket endpoint with 404 and no upgrade', async () => {
    const socket = new WebSocket(`${t.app.baseUrl.replace('http', 'ws')}/api/v1/ws/nothing-here`);
    const status = await new Promise<number>((resolve) => {
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('error', () => resolve(-1));
    });
    expect(status).toBe(404);
  });

  it('keeps working for a well-behaved client during all this', async () => {
    const client = await connect();
    await client.waitForFrame((f) => f.type === 'welcome');
    client.run('echo final-$((10*10))');
    await client.waitForScreen(/final-100/);
    await eventually(() => expect(client.frames.filter((f) => f.type === 'error')).toEqual([]));
  });
});
