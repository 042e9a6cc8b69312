import { load, median } from '../support/load.js';
import { startServer } from '../support/server.js';
import type { BenchContext } from '../context.js';

/** The framework's floor: readiness (one MongoDB ping per request) under load, and cold start. */
export async function foundation(ctx: BenchContext): Promise<Record<string, unknown>> {
  const startups: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    const server = await startServer(ctx.mongodbUri, 'bench_foundation', ctx.port);
    startups.push(server.startupMs);
    await server.stop();
  }
  const server = await startServer(ctx.mongodbUri, 'bench_foundation', ctx.port);
  try {
    const ready = await load({ url: `${server.baseUrl}/health/ready` });
    const live = await load({ url: `${server.baseUrl}/health/live` });
    return {
      cold_start_to_ready_ms: { median: Math.round(median(startups)), runs: startups.map(Math.round) },
      health_ready: ready,
      health_live: live,
    };
  } finally {
    await server.stop();
  }
}
