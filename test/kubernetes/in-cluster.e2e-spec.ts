import { inject } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { InClusterInstallation } from '../support/k8s/in-cluster-installation.js';
import { ResumingTerminal } from '../support/resuming-terminal.js';
import { ApiClient, type ClusterAccount } from '../support/server-cluster.js';

/**
 * The server in the cluster: deploy/kubernetes/ applied to the test cluster with the images built
 * here (test/support/k8s/server-image.ts), 2 replicas and a Redis on the real node, the server
 * configured in-cluster through its ServiceAccount and reaching the run's database. Through the
 * Service (its ready endpoints, test/support/k8s/in-cluster-installation.ts): register, create an
 * environment (a real pod), type in its terminal; then a rolling restart of the Deployment while a
 * terminal client is connected and typing: it reconnects with resume to a new replica and
 * resumes or redraws, the shell is the same one, and every line typed before, during and after
 * arrives, once and in order.
 */
const kubernetes = inject('kubernetes');

describe.runIf(kubernetes.testbed && kubernetes.realNode !== null)('the server in the cluster', () => {
  let database: TestDatabase;
  let installation: InClusterInstallation | null = null;
  const log = (line: string): void => void process.stderr.write(`[in-cluster] ${line}\n`);

  beforeAll(async () => {
    database = createTestDatabase('in_cluster');
    installation = await InClusterInstallation.start({
      adminKubeconfig: kubernetes.adminKubeconfig,
      storageClass: kubernetes.realNode!.storageClass,
      containerdSocket: kubernetes.realNode!.containerdSocket,
      database,
      log,
    });
  }, 600_000);

  afterAll(async () => {
    await installation?.stop();
    await database?.drop();
  }, 180_000);

  it('serves a terminal through the Service, and a rolling restart loses nothing typed', async () => {
    const service = installation!;
    const api = async (): Promise<ApiClient> => new ApiClient(await service.baseUrl());
    const account: ClusterAccount = await (await api()).register();
    const created = await (
      await api()
    ).json<{ id: string }>('POST', '/api/v1/environments', {
      token: account.tokens.access_token,
      body: { name: 'In cluster', template: 'debian' },
    });
    expect(created.status).toBe(201);
    const environment = await (await api()).waitForPhase(account, created.body.id, 'running', 180_000);

    const terminal = await ResumingTerminal.open(async (resume) => {
      const query = new URLSearchParams({ token: account.tokens.access_token });
      if (resume !== null) query.set('resume', String(resume));
      return `${(await service.baseUrl()).replace(/^http/, 'ws')}/api/v1/ws/terminal/${environment.id}?${query.toString()}`;
    });
    try {
      terminal.run('echo "shell:$$:$((6*7))"');
      const [, shell] = await terminal.waitForOutput(/shell:(\d+):42/);

      // Every line typed goes to `cat`, which appends it to a file; the file says what arrived.
      // Typed only once cat reads the terminal: what bash's line editor holds when it runs a command is not echoed.
      terminal.run('echo "cat:$((6*7))"; cat > ~/typed.txt');
      await terminal.waitForOutput(/cat:42/);
      const typed: string[] = [];
      const type = (): void => {
        const line = `line-${String(typed.length)}`;
        typed.push(line);
        terminal.run(line);
      };
      for (let i = 0; i < 3; i++) type();
      await terminal.waitForOutput(/line-2/);

      const podsBefore = await service.serverPods();
      const started = Date.now();
      await service.rolloutRestart();
      const typing = setInterval(type, 250);
      try {
        await service.waitForRollout();
        await terminal.waitUntilConnected();
      } finally {
        clearInterval(typing);
      }
      log(`rollout restart with a client typing: ${((Date.now() - started) / 1000).toFixed(1)} s, ${String(typed.length)} lines typed`);
      expect((await service.serverPods()).filter((pod) => podsBefore.includes(pod))).toEqual([]);
      for (let i = 0; i < 3; i++) type();

      const mark = terminal.screen.length;
      terminal.input('\x04');
      terminal.run('echo "typed:$(paste -sd, ~/typed.txt):end"; echo "shell:$$:$((6*7))"');
      const [, arrived] = await terminal.waitForOutput(/typed:(line-[^:]*):end/, mark);
      expect(arrived.split(',')).toEqual(typed);
      // The same shell: the terminal session lived through the restart of every replica.
      const [, shellAfter] = await terminal.waitForOutput(/shell:(\d+):42/, mark);
      expect(shellAfter).toBe(shell);

      // The client was moved off its replica and came back with resume: exactly, or with a redraw.
      const welcomed = terminal.reconnections.filter((reconnection) => reconnection.welcomed);
      expect(welcomed.length).toBeGreaterThanOrEqual(1);
      for (const reconnection of welcomed) {
        expect(reconnection.resumeFrom).not.toBeNull();
        expect(reconnection.resumed).toBe(true);
        // Resumed exactly (the output went on from the client's position) or with a reset and a redraw.
        expect(reconnection.reset || reconnection.continued).toBe(true);
      }
      log(`reconnections: ${JSON.stringify(terminal.reconnections)}`);
    } finally {
      await terminal.close();
    }

    const deleted = await (await api()).json('DELETE', `/api/v1/environments/${environment.id}`, { token: account.tokens.access_token });
    expect(deleted.status).toBeLessThan(300);
    await (await api()).waitForPhase(account, environment.id, 'terminated', 120_000);
  }, 600_000);
});
