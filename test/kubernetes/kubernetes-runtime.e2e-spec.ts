import { describeRuntimeContract } from '../runtime/runtime-contract.js';
import { kubernetesConfig, kubernetesSpec, kubernetesUnderTest } from '../support/kubernetes.js';
import { createTestNamespace } from '../support/runtime-under-test.js';

/** The runtime contract for the Kubernetes runtime, in a namespace of its own, as the provider's ServiceAccount. */
describeRuntimeContract('kubernetes', async () => {
  const { namespace, remove } = await createTestNamespace('dp-contract');
  return kubernetesUnderTest(kubernetesConfig(namespace), kubernetesSpec, remove);
});
