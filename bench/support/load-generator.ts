/**
 * The load bench's clients, in a process of their own (forked by bench/suites/load.ts through
 * bench/support/load-clients.ts, with tsx): terminal WebSockets that read and count what they
 * receive, some of them slow readers (the socket paused whenever the client is over its reading
 * rate, so the server's send buffers fill as a phone on a poor link would make them).
 *
 * Messages in (IPC): `connect`, `measure`, `close`; out: `connected`, `measured`, `closed`
 * (bench/support/load-protocol.ts). Nothing here parses more than it counts: each output frame's
 * data length, its wire length, and closes nobody asked for.
 */
import { WebSocket } from 'ws';
import type { ClientFigures, GeneratorReply, GeneratorRequest, Target } from './load-protocol.js';

interface Client {
  ws: WebSocket;
  environmentId: string;
  replica: number;
  /** Stream bytes (the `data` of output frames, UTF-8) and frame bytes since the last reset. */
  bytes: number;
  wireBytes: number;
  frames: number;
  /** Slow readers: bytes they may still read before they pause, refilled every tick. */
  slow: boolean;
  tokens: number;
  paused: boolean;
  closedByUs: boolean;
  closed: { code: number; reason: string } | null;
}

const TICK_MS = 50;
const clients: Client[] = [];
let slowBytesPerSecond = 0;

const send = (reply: GeneratorReply): void => void process.send?.(reply);

/** The byte length of the `data` string of an output frame, without parsing the frame twice. */
function outputBytes(raw: Buffer): number {
  // Output frames are {"type":"output","data":"…","offset":N}: only those carry stream bytes.
  if (raw.length < 16 || raw[9] !== 0x6f /* o of "output" */) return 0;
  const frame = JSON.parse(raw.toString('utf8')) as { type?: string; data?: unknown };
  return frame.type === 'output' && typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : 0;
}

async function connectOne(baseUrl: string, target: Target, replica: number, cols: number, rows: number): Promise<Client | string> {
  const query = new URLSearchParams({ token: target.token, cols: String(cols), rows: String(rows) });
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v1/ws/terminal/${target.environmentId}?${query.toString()}`, {
    perMessageDeflate: false,
  });
  const client: Client = {
    ws,
    environmentId: target.environmentId,
    replica,
    bytes: 0,
    wireBytes: 0,
    frames: 0,
    slow: false,
    tokens: 0,
    paused: false,
    closedByUs: false,
    closed: null,
  };
  ws.on('message', (raw: Buffer) => {
    client.wireBytes += raw.length;
    client.frames += 1;
    client.bytes += outputBytes(raw);
    if (client.slow) {
      client.tokens -= raw.length;
      if (client.tokens <= 0 && !client.paused) {
        client.paused = true;
        ws.pause();
      }
    }
  });
  ws.on('close', (code, reason) => (client.closed = { code, reason: reason.toString() }));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('no welcome within 20 s');
    }, 20_000);
    const fail = (why: string): void => {
      clearTimeout(timer);
      resolve(why);
    };
    ws.once('error', (error) => fail(error.message));
    ws.once('close', (code, reason) => fail(`closed before welcome: ${code} ${reason.toString()}`));
    // The welcome is the first frame; the redraw follows it.
    ws.once('message', () => {
      clearTimeout(timer);
      ws.removeAllListeners('error');
      ws.on('error', () => undefined);
      resolve(client);
    });
  });
}

async function connect(request: Extract<GeneratorRequest, { type: 'connect' }>): Promise<void> {
  const slots: { target: Target; replica: number }[] = [];
  let n = 0;
  for (const target of request.targets)
    for (let i = 0; i < target.clients; i += 1) slots.push({ target, replica: n++ % request.baseUrls.length });
  const errors: string[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(request.concurrency, slots.length) }, async () => {
      while (next < slots.length) {
        const { target, replica } = slots[next++];
        const result = await connectOne(request.baseUrls[replica], target, replica, request.cols, request.rows);
        if (typeof result === 'string') errors.push(result);
        else clients.push(result);
      }
    }),
  );
  send({
    type: 'connected',
    connected: clients.length,
    failed: errors.length,
    errors: errors.slice(0, 10),
    seconds: (performance.now() - started) / 1000,
  });
}

/** Resets every count, makes `slowPerEnvironment` clients of each environment slow readers, waits, reports. */
async function measure(request: Extract<GeneratorRequest, { type: 'measure' }>): Promise<void> {
  slowBytesPerSecond = request.slowBytesPerSecond;
  const seen = new Map<string, number>();
  for (const client of clients) {
    const index = seen.get(client.environmentId) ?? 0;
    seen.set(client.environmentId, index + 1);
    // The last clients of each environment read slowly; the first reads at full speed.
    client.slow = index >= (request.clientsPerEnvironment ?? Infinity) - request.slowPerEnvironment;
    client.tokens = 0;
    client.bytes = 0;
    client.wireBytes = 0;
    client.frames = 0;
    if (!client.slow && client.paused) {
      client.paused = false;
      client.ws.resume();
    }
  }
  const droppedBefore = clients.filter((client) => client.closed && !client.closedByUs).length;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, request.seconds * 1000));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const figures: ClientFigures[] = clients.map((client) => ({
    replica: client.replica,
    slow: client.slow,
    bytes: client.bytes,
    wire_bytes: client.wireBytes,
    frames: client.frames,
    open: client.ws.readyState === WebSocket.OPEN,
  }));
  const dropped = clients.filter((client) => client.closed && !client.closedByUs);
  send({
    type: 'measured',
    seconds,
    clients: figures,
    dropped: dropped.length,
    dropped_during: dropped.length - droppedBefore,
    close_codes: dropped.map((client) => `${client.closed!.code} ${client.closed!.reason}`).slice(0, 10),
    generator_cpu_percent: ((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100,
  });
}

async function closeAll(): Promise<void> {
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve) => {
          client.closedByUs = true;
          if (client.paused) client.ws.resume();
          if (client.ws.readyState === WebSocket.CLOSED) return resolve();
          client.ws.once('close', () => resolve());
          client.ws.close();
          setTimeout(() => {
            client.ws.terminate();
            resolve();
          }, 5000).unref();
        }),
    ),
  );
  clients.length = 0;
  send({ type: 'closed' });
}

// Slow readers: each tick refills a slow client's budget and lets it read while the budget lasts.
setInterval(() => {
  if (slowBytesPerSecond <= 0) return;
  const refill = (slowBytesPerSecond * TICK_MS) / 1000;
  for (const client of clients) {
    if (!client.slow) continue;
    client.tokens = Math.min(client.tokens + refill, 2 * refill);
    if (client.tokens > 0 && client.paused) {
      client.paused = false;
      client.ws.resume();
    }
  }
}, TICK_MS);

process.on('message', (message: GeneratorRequest) => {
  const work = message.type === 'connect' ? connect(message) : message.type === 'measure' ? measure(message) : closeAll();
  void work.then(
    () => (message.type === 'close' ? process.disconnect() : undefined),
    (error: unknown) => send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));
