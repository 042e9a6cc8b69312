import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

/**
 * Two projects, one run:
 * - `default`: unit specs (src/**\/*.spec.ts and console/src/**\/*.spec.ts, next to the code) and end-to-end specs
 *   (test/**\/*.e2e-spec.ts) on the local runtime; one embedded database serves them all.
 * - `kubernetes`: the Kubernetes runtime's own suites (test/kubernetes/), and the
 *   runtime-agnostic terminal suites again with DEVPOCKET_TEST_RUNTIME=kubernetes, against the
 *   cluster of KUBECONFIG or the local test cluster (test/support/kubernetes-global-setup.ts).
 * `npm run test:unit`, `test:e2e` and `test:k8s` select by project and folder.
 * SWC compiles the TypeScript so that decorator metadata, which Nest's injection needs, is emitted.
 */
const KUBERNETES_SUITES = [
  'test/kubernetes/**/*.e2e-spec.ts',
  'test/terminal/terminal.e2e-spec.ts',
  'test/terminal/terminal-backpressure.e2e-spec.ts',
  'test/terminal/terminal-rejections.e2e-spec.ts',
];

export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    globals: true,
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'default',
          include: ['src/**/*.spec.ts', 'console/src/**/*.spec.ts', 'test/support/**/*.spec.ts', 'test/**/*.e2e-spec.ts'],
          exclude: ['test/kubernetes/**', '**/node_modules/**'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'kubernetes',
          include: KUBERNETES_SUITES,
          // The test cluster's own suite needs the test cluster.
          exclude: process.env.KUBECONFIG ? ['test/kubernetes/testbed.e2e-spec.ts'] : [],
          env: { DEVPOCKET_TEST_RUNTIME: 'kubernetes' },
          globalSetup: ['test/support/global-setup.ts', 'test/support/kubernetes-global-setup.ts'],
          testTimeout: 60_000,
          // Two files at a time whatever the machine (vitest's default is one worker per core but one on
          // two cores): these suites mostly wait for the test cluster (pods starting and ending on its real
          // node), so a second file fills that time. After the default project, even in one `vitest run`.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
