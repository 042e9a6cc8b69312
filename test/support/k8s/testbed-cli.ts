/**
 * `npm run k8s:testbed`: the Kubernetes test cluster by hand.
 *
 *   tsx test/support/k8s/testbed-cli.ts [--dir DIR] [--build-only] [--no-real-node]
 *
 * --build-only builds (or finds) the cached binaries (tools/k8s-testbed) and the real node's images
 * (./images.ts) and prints their directories; `npm run setup` runs it. Otherwise the cluster starts
 * (logs, certificates and kubeconfigs in DIR, default a new temporary directory), its kubeconfig
 * paths are printed, and it runs until Ctrl-C. --no-real-node leaves the real node out (kwok's alone:
 * no root, containerd or images needed).
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { ensureTestbedBinaries } from './build.js';
import { ensureTestImages } from './images.js';
import { startTestCluster } from './testbed.js';
import { waitForSignal } from '../../../src/common/lifecycle/wait-for-signal.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      'build-only': { type: 'boolean', default: false },
      'real-node': { type: 'boolean', default: true },
    },
    strict: true,
    allowPositionals: false,
    allowNegative: true,
  });
  if (values['build-only']) {
    process.stdout.write(`${(await ensureTestbedBinaries()).dir}\n`);
    if (!values['real-node']) return;
    // The images are built as root (debootstrap, podman), which the real node needs to run anyway.
    if (process.getuid?.() !== 0) console.error("k8s-testbed: not root: the real node's images are not built (the real node needs root)");
    else process.stdout.write(`${(await ensureTestImages()).dir}\n`);
    return;
  }
  // Ctrl-C while starting ends this process; the cluster's watchdog then kills what was started.
  const cluster = await startTestCluster({
    dir: values.dir === undefined ? undefined : path.resolve(values.dir),
    realNode: values['real-node'],
  });
  const real = cluster.realNode;
  const signal = waitForSignal();
  process.stdout.write(
    [
      `API server:          ${cluster.server}`,
      `admin kubeconfig:    ${cluster.adminKubeconfig}`,
      `provider kubeconfig: ${cluster.providerKubeconfig}   (ServiceAccount devpocket/devpocket-server, namespace ${cluster.namespace})`,
      `logs:                ${cluster.dir}`,
      `default node:        ${cluster.defaultNodeKind} (namespaces without a node-kind annotation), StorageClass ${cluster.storageClass}`,
      `kwok's node:         namespaces annotated ${Object.entries(cluster.kwok.namespaceAnnotations)
        .map(([key, value]) => `${key}=${value}`)
        .join(', ')}, StorageClass ${cluster.kwok.storageClass}, pod volumes in ${cluster.hostPaths.root}`,
      ...(real === null
        ? []
        : [
            `real node:           ${real.name}: StorageClass ${real.storageClass} (volumes in ${real.volumesRoot}), images ${Object.values(real.images).join(', ')}`,
          ]),
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
