/**
 * The pane-modes probe on the local runtime, without a sandbox (the probe reads the pane's terminal
 * itself) and in bubblewrap (each sandbox has its own /dev/pts: the termios is read through a tmux
 * job in the tmux server's sandbox). See test/runtime/pane-modes-contract.ts.
 */
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { eventually } from '../support/eventually.js';
import { localRuntimeUnderTest, type LocalUnderTest } from './local-runtime-under-test.js';
import { paneModesContract } from './pane-modes-contract.js';

for (const sandbox of ['none', 'bwrap'] as const) {
  describe(`pane modes on the local runtime (sandbox: ${sandbox})`, () => {
    let under: LocalUnderTest;
    let spec: EnvironmentSpec;

    beforeAll(async () => {
      under = await localRuntimeUnderTest(sandbox);
      spec = under.spec();
      await under.runtime.provision(spec);
      await eventually(async () => expect((await under.runtime.status(spec)).state).toBe('running'), 30_000);
    }, 60_000);

    afterAll(async () => {
      await under?.cleanup();
    });

    paneModesContract(`local (${sandbox})`, () => ({ runtime: under.runtime, spec }));
  });
}
