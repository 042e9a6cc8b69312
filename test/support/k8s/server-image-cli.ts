/**
 * Builds (or finds) the server's and Redis's images for the test cluster's real node
 * (./server-image.ts) and prints their archives; `npm run setup` runs it after `npm run build`.
 *
 *   tsx test/support/k8s/server-image-cli.ts
 */
import { ensureServerImages } from './server-image.js';

const started = Date.now();
const images = await ensureServerImages();
process.stdout.write(`${images.server.archive}\n${images.redis.archive}\n`);
process.stderr.write(
  `server-image: ${images.server.name} and ${images.redis.name} ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
