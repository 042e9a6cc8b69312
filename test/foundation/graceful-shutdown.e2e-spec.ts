import { eventually } from '../support/eventually.js';
import { ProbeGate, ProbeModule } from '../support/probe.module.js';
import { createTestApp } from '../support/test-app.js';

describe('graceful shutdown', () => {
  it('finishes in-flight requests, refuses new connections, then closes', async () => {
    const t = await createTestApp({ imports: [ProbeModule] });
    ProbeGate.hold();
    const inFlight = fetch(`${t.baseUrl}/api/v1/probe/slow`);
    await eventually(() => expect(ProbeGate.held).toBe(1));

    let closed = false;
    const closing = t.close().then(() => (closed = true));

    await eventually(async () => {
      await expect(fetch(`${t.baseUrl}/health`, { headers: { connection: 'close' } })).rejects.toThrow();
    });
    expect(closed).toBe(false);

    ProbeGate.release();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ done: true });
    await closing;
    expect(closed).toBe(true);
  });
});
