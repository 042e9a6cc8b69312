/**
 * The runtime contract: what every RuntimeProvider must do, written once against the port only.
 * A runtime joins by calling describeRuntimeContract() with a factory (see
 * test/runtime/local-runtime.e2e-spec.ts). The environments it runs must have bash, coreutils,
 * `stty`/`tput` and tmux (`attachTerminal` is a tmux client, `tmux new-session -A`).
 *
 * The contract is in three parts (./runtime-contract-lifecycle.ts, ./runtime-contract-exec.ts,
 * ./runtime-contract-terminals.ts) over the context of ./runtime-contract-support.ts.
 */
import { execContract } from './runtime-contract-exec.js';
import { lifecycleContract } from './runtime-contract-lifecycle.js';
import { contractContext, type RuntimeUnderTest } from './runtime-contract-support.js';
import { terminalContract } from './runtime-contract-terminals.js';

export { contractTemplate, runToEnd, type Output, type RuntimeUnderTest, type SpecOverrides } from './runtime-contract-support.js';

export function describeRuntimeContract(name: string, factory: () => Promise<RuntimeUnderTest>): void {
  describe(`runtime contract: ${name}`, () => {
    const context = contractContext(factory);
    lifecycleContract(context);
    execContract(context);
    terminalContract(context);
  });
}
