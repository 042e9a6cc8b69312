/**
 * The pane-modes probe on the Kubernetes runtime, in a real container on the test cluster's real
 * node (kubelet, containerd, runc), from DevPocket's image of the debian template: the probe is a
 * second exec into the pod for the attachment's lifetime, reading the pane's terminal in the
 * container. See test/runtime/pane-modes-contract.ts. Skipped without the real node.
 */
import { inject } from 'vitest';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import { paneModesContract } from '../runtime/pane-modes-contract.js';
import type { RuntimeUnderTest } from '../runtime/runtime-contract.js';
import { eventually } from '../support/eventually.js';
import { kubernetesConfig, kubernetesSpec, kubernetesUnderTest } from '../support/kubernetes.js';
import { createTestNamespace } from '../support/runtime-under-test.js';

const kubernetes = inject('kubernetes');

describe.skipIf(kubernetes.realNode === null)('pane modes on the Kubernetes runtime (real node)', () => {
  let under: RuntimeUnderTest | undefined;
  let spec: EnvironmentSpec;

  beforeAll(async () => {
    const { namespace, remove } = await createTestNamespace('dp-pane-modes');
    under = kubernetesUnderTest(kubernetesConfig(namespace), kubernetesSpec, remove);
    spec = under.spec();
    // The namespace's Role may not be in force yet (a 403 for a moment): provision is idempotent, try again.
    await eventually(() => under!.runtime.provision(spec), 30_000, 500);
    await eventually(async () => expect((await under!.runtime.status(spec)).state).toBe('running'), 90_000, 200);
  }, 120_000);

  afterAll(async () => {
    await under?.cleanup();
  }, 120_000);

  paneModesContract('kubernetes (real node)', () => ({ runtime: under!.runtime, spec }), 90_000);
});
