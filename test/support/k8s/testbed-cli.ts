/**
 * `npm run k8s:testbed`: the Kubernetes test cluster by hand.
 *
 *   tsx test/support/k8s/testbed-cli.ts [--dir DIR] [--build-only]
 *
 * --build-only builds (or finds) the cached binaries (tools/k8s-testbed) and prints their directory;
 * `npm run setup` runs it. Otherwise the cluster starts (logs, certificates and kubeconfigs in DIR,
 * default a new temporary directory), its kubeconfig paths are printed, and it runs until Ctrl-C.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { ensureTestbedBinaries } from './build.js';
import { startTestCluster } from './testbed.js';
import { waitForSignal } from '../../../src/common/lifecycle/wait-for-signal.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { dir: { type: 'string' }, 'build-only': { type: 'boolean', default: false } },
    strict: true,
    allowPositionals: false,
  });
  if (values['build-only']) {
    process.stdout.write(`${(await ensureTestbedBinaries()).dir}\n`);
    return;
  }
  // Ctrl-C while starting ends this process; the cluster's watchdog then kills what was started.
  const cluster = await startTestCluster({ dir: values.dir === undefined ? undefined : path.resolve(values.dir) });
  const signal = waitForSignal();
  process.stdout.write(
    [
      `API server:          ${cluster.server}`,
      `admin kubeconfig:    ${cluster.adminKubeconfig}`,
      `provider kubeconfig: ${cluster.providerKubeconfig}   (ServiceAccount devpocket/devpocket-server, namespace ${cluster.namespace})`,
      `logs:                ${cluster.dir}`,
      `pod volumes:         ${cluster.hostPaths.root}`,
      '',
      `  export KUBECONFIG=${cluster.adminKubeconfig}`,
      '',
    ].join('\n'),
  );
  console.error('Press Ctrl-C to stop.');
  console.error(`Stopping on ${await signal}…`);
  await cluster.stop();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
