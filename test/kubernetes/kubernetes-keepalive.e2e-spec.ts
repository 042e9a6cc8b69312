import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { Clock } from '../../src/common/clock/clock.js';
import type { AppConfig } from '../../src/config/namespaces/app.config.js';
import type { RuntimeConfig } from '../../src/config/namespaces/runtime.config.js';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import type { RuntimeInstrumentation } from '../../src/runtime/runtime-instrumentation.js';
import type { Installation } from '../../src/settings/installation.js';
import { createRuntime, RUNTIME_DEPENDENCIES } from '../../src/runtime/runtime.module.js';
import { RuntimeProvider, type EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import type { TestAccount } from '../support/accounts.js';
import { createEnvironmentsApp, type EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';
import type { FaultProxy } from '../support/k8s/fault-proxy.js';
import { kubernetesSpec } from '../support/kubernetes.js';
import { providerKubeconfigFileThrough, startProxiedRuntimes, type ProxiedRuntimes } from '../support/kubernetes-proxied.js';
import { TerminalTestClient } from '../support/terminal-client.js';

/** Short keep-alive figures, so that a dead connection is found in about a second. */
const KEEPALIVE = { execKeepaliveMs: 300, execPongTimeoutMs: 700 };

/**
 * The exec keep-alive against a connection that dies without a word: the fault proxy between the
 * provider and the API server stops forwarding an established exec WebSocket both ways, closing
 * nothing (`blackholeStreams`). The exec must notice within its pong deadline and end; the
 * terminal hub must then close its clients so that they reconnect, and a reconnect with `resume`
 * gets a redraw from a new upstream.
 */
describe('Kubernetes exec keep-alive: a connection that dies silently', () => {
  let fixture: ProxiedRuntimes;
  let proxy: FaultProxy;
  let namespace: string;
  let direct: KubernetesRuntime;
  let runtime: KubernetesRuntime;

  const running = (spec: EnvironmentSpec): Promise<unknown> =>
    eventually(async () => expect((await direct.status(spec)).state).toBe('running'), 60_000, 200);

  beforeAll(async () => {
    fixture = await startProxiedRuntimes({ prefix: 'dp-keepalive', runtime: KEEPALIVE });
    ({ proxy, namespace, direct, runtime } = fixture);
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await fixture.afterEach();
  });

  afterAll(() => fixture?.close());

  it('keeps an answered connection open, and ends a blackholed one within its pong deadline, saying why', async () => {
    const warnings = vi.spyOn(Logger.prototype, 'warn');
    const spec = fixture.track(kubernetesSpec());
    await direct.provision(spec);
    await running(spec);
    const session = await runtime.exec(spec, ['bash', '--noprofile', '--norc'], { tty: true, cols: 80, rows: 24 });
    let screen = '';
    session.stream.on('data', (chunk: Buffer) => (screen += chunk.toString()));
    let ended = false;
    void session.exit.then(() => (ended = true));

    // Idle for several ping intervals: the API server answers every ping, so nothing ends.
    await delay(2_500);
    expect(ended).toBe(false);
    session.stream.write('echo alive-$((20+22))\n');
    await eventually(() => expect(screen).toContain('alive-42'));

    // Now the connection goes silent both ways, with no FIN and no RST.
    expect(proxy.blackholeStreams({ path: /\/exec/ })).toBe(1);
    const silencedAt = Date.now();
    expect(await session.exit).toEqual({ code: null, signal: 'SIGHUP' });
    // Found by the first ping after the silence (≤ 300 ms), then its deadline (700 ms): well within 3 s.
    expect(Date.now() - silencedAt).toBeLessThan(3_000);
    expect(warnings.mock.calls.map(([message]) => String(message))).toContainEqual(
      expect.stringMatching(
        new RegExp(`an exec in pod ${namespace}/dp-${spec.id}-0 answered no ping within 0.7 s: it is dead, closing it`),
      ),
    );
  });

  describe('the terminal', () => {
    let app: EnvironmentsApp;
    let owner: TestAccount & { id: string };
    let kubeconfig: { file: string; remove(): void };

    beforeAll(async () => {
      kubeconfig = providerKubeconfigFileThrough(proxy, 'devpocket-keepalive');
      app = await createEnvironmentsApp({
        env: { KUBECONFIG: kubeconfig.file },
        override: (builder) =>
          builder.overrideProvider(RuntimeProvider).useFactory({
            inject: RUNTIME_DEPENDENCIES,
            factory: (
              config: RuntimeConfig,
              appConfig: AppConfig,
              clock: Clock,
              instrumentation: RuntimeInstrumentation,
              installation: Installation,
            ) => createRuntime(config, appConfig, clock, instrumentation, installation, { kubernetes: KEEPALIVE }),
          }),
      });
      owner = await app.account('pro');
    }, 120_000);

    afterAll(async () => {
      await app?.close();
      kubeconfig?.remove();
    }, 120_000);

    it('closes its clients with 4500 when the upstream dies silently; a reconnect with resume gets a reset and a redraw', async () => {
      const env = await app.createRunning(owner, { name: 'Blackholed', template: 'debian' });
      const token = owner.tokens.access_token;
      const first = await TerminalTestClient.connect(app.baseUrl, env.id, { token });
      await first.waitForFrame((frame) => frame.type === 'welcome');
      first.run('echo before-$((6*7))');
      await first.waitForScreen(/before-42/);

      expect(proxy.blackholeStreams({ path: /\/exec/ })).toBeGreaterThanOrEqual(1);
      const closed = await Promise.race([first.closed, delay(10_000, null)]);
      expect(closed).toEqual({ code: 4500, reason: 'upstream lost' });
      expect(first.frames.at(-1)).toEqual({ type: 'error', message: 'The connection to the terminal was lost; reconnect to resume' });

      const again = await TerminalTestClient.connect(app.baseUrl, env.id, { token, resume: first.offset });
      const welcome = await again.waitForFrame((frame) => frame.type === 'welcome', 30_000);
      expect(welcome.session).toMatchObject({ resumed: true });
      // Another upstream, another stream: what the client holds is not in it, so a reset, then tmux's redraw.
      await again.waitForFrame((frame) => frame.type === 'reset');
      await again.waitForScreen(/before-42/, 20_000);
      again.run('echo after-$((7*6))');
      await again.waitForScreen(/after-42/, 20_000);
      await again.close();

      expect((await app.json('DELETE', `/api/v1/environments/${env.id}`, { token })).status).toBe(200);
      await app.waitForPhase(owner, env.id, 'terminated');
    }, 180_000);
  });
});
