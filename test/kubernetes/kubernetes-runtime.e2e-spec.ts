import { KubernetesApi } from '../../src/runtime/kubernetes/kubernetes-api.js';
import { KubernetesRuntime } from '../../src/runtime/kubernetes/kubernetes-runtime.js';
import { describeRuntimeContract } from '../runtime/runtime-contract.js';
import { kubernetesConfig, kubernetesSpec } from '../support/kubernetes.js';
import { createTestNamespace } from '../support/runtime-under-test.js';

describeRuntimeContract('kubernetes', async () => {
  const { namespace, remove } = await createTestNamespace('dp-contract');
  const config = kubernetesConfig(namespace);
  const instances: KubernetesRuntime[] = [];
  const instance = (): KubernetesRuntime => {
    const created = new KubernetesRuntime(config, new KubernetesApi(config));
    instances.push(created);
    return created;
  };
  const runtime = instance();
  return {
    runtime,
    spec: kubernetesSpec,
    anotherInstance: () => Promise.resolve(instance()),
    cleanup: async () => {
      for (const id of await runtime.list()) await runtime.destroy({ ...kubernetesSpec(), id });
      for (const each of instances) await each.onApplicationShutdown();
      await remove();
    },
  };
});
