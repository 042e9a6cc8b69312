import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

/**
 * One project for unit specs (src/**\/*.spec.ts, next to the code) and end-to-end specs
 * (test/**\/*.e2e-spec.ts), so one embedded database serves the whole run (globalSetup).
 * `npm run test:unit` and `npm run test:e2e` select by folder.
 * SWC compiles the TypeScript so that decorator metadata, which Nest's injection needs, is emitted.
 */
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    globals: true,
    environment: 'node',
    pool: 'forks',
    include: ['src/**/*.spec.ts', 'test/**/*.e2e-spec.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
