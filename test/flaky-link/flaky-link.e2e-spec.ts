/**
 * The flaky link's real process (test/support/flaky-link/), between clients and a small echo TCP
 * server or a `ws` WebSocket server on loopback: data arrives byte-identical and in order through
 * delay, jitter, loss and a bandwidth limit; a blackhole delivers nothing until healed; reset and
 * roam cut connections with an RST; the process goes away with its controller. No assertion here
 * depends on how long anything took.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

import { eventually } from '../support/eventually.js';
import { bothWays, FlakyLink, type FlakyLinkOptions } from '../support/flaky-link/flaky-link.js';
import { mulberry32 } from '../support/flaky-link/prng.js';

/** Seeded bytes, so a failure can be replayed. */
function payload(seed: number, length: number): Buffer {
  const next = mulberry32(seed);
  return Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
}

/** Writes `data` in seeded pieces of 1 to 5000 bytes. */
function writeInPieces(socket: Socket, data: Buffer, seed: number): void {
  const next = mulberry32(seed);
  for (let at = 0; at < data.length;) {
    const size = 1 + Math.floor(next() * 5000);
    socket.write(data.subarray(at, at + size));
    at += size;
  }
}

/** Everything a socket receives, and a way to wait for a number of bytes (failing after 20 s). */
function collect(socket: Socket) {
  const chunks: Buffer[] = [];
  let length = 0;
  let waiter: { bytes: number; resolve: () => void } | null = null;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    length += chunk.length;
    if (waiter && length >= waiter.bytes) waiter.resolve();
  });
  return {
    get length() {
      return length;
    },
    bytes: () => Buffer.concat(chunks),
    until: async (bytes: number) => {
      if (length >= bytes) return;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve, reject) => {
        waiter = { bytes, resolve };
        timer = setTimeout(() => reject(new Error(`received ${length} bytes, waiting for ${bytes}`)), 20_000);
      }).finally(() => {
        clearTimeout(timer);
        waiter = null;
      });
    },
  };
}

/** How a socket ended: the code of its error, or null if it closed without one. */
function closeReason(socket: Socket): Promise<string | null> {
  let code: string | null = null;
  socket.once('error', (error: NodeJS.ErrnoException) => (code = error.code ?? error.message));
  return new Promise((resolve) => socket.once('close', () => resolve(code)));
}

async function connectTo(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

/** Whether a process runs (an exited one not yet reaped, a zombie, does not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function listening(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A TCP echo server that counts what it reads and records its sockets' errors. */
async function startEcho() {
  const sockets = new Set<Socket>();
  const echo = {
    port: 0,
    received: 0,
    errors: [] as string[],
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => (echo.received += chunk.length));
    socket.on('error', (error: NodeJS.ErrnoException) => echo.errors.push(error.code ?? error.message));
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  echo.port = await listening(server);
  return echo;
}

describe('flaky link', () => {
  const cleanups: Array<() => Promise<void> | void> = [];

  /** A link to an echo server of its own. */
  const startLink = async (options: Omit<FlakyLinkOptions, 'target'>) => {
    const echo = await startEcho();
    cleanups.push(echo.close);
    const link = await FlakyLink.start({ target: echo.port, ...options });
    cleanups.push(() => link.close());
    return { link, echo };
  };

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('echoes 256 KiB byte-identical and in order through delay, jitter, loss and a bandwidth limit', async () => {
    const { link } = await startLink({
      seed: 11,
      ...bothWays({ delayMs: 20, jitterMs: 15, loss: 0.05, bytesPerSecond: 1_000_000 }),
      segmentBytes: 1000,
      windowBytes: 32 * 1024,
    });
    const sent = payload(1, 256 * 1024);
    const client = await connectTo(link.port);
    const back = collect(client);
    writeInPieces(client, sent, 2);
    await back.until(sent.length);
    expect(back.bytes().equals(sent)).toBe(true);
    const stats = await link.stats();
    expect(stats.bytes).toEqual({ up: sent.length, down: sent.length });
    expect(stats.lost.up + stats.lost.down).toBeGreaterThan(0);
    expect(stats.connections).toEqual({ open: 1, total: 1 });
    client.destroy();
  });

  it('makes the same loss decisions for the same seed and the same reads', async () => {
    // One message at a time, each smaller than a packet: every read is one message, on both sides.
    const lossOf = async (seed: number) => {
      const { link } = await startLink({ seed, ...bothWays({ delayMs: 1, loss: 0.1 }), lossStallMs: 1 });
      const client = await connectTo(link.port);
      const back = collect(client);
      for (let i = 1; i <= 200; i++) {
        client.write(payload(i, 300));
        await back.until(300 * i);
      }
      client.destroy();
      return (await link.stats()).lost;
    };
    const first = await lossOf(5);
    expect(first.up).toBeGreaterThan(0);
    expect(first.down).toBeGreaterThan(0);
    expect(await lossOf(5)).toEqual(first);
  });

  it('carries a WebSocket: every message arrives intact and in order', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wss.on('connection', (socket) => socket.on('message', (data: RawData, isBinary) => socket.send(data, { binary: isBinary })));
    const link = await FlakyLink.start({
      target: (wss.address() as AddressInfo).port,
      seed: 12,
      ...bothWays({ delayMs: 25, jitterMs: 20, loss: 0.05 }),
      segmentBytes: 600,
    });
    cleanups.push(() => link.close());
    const ws = new WebSocket(link.url('/echo', 'ws'));
    const messages: Buffer[] = [];
    ws.on('message', (data: Buffer) => messages.push(data));
    await once(ws, 'open');
    const sent = Array.from({ length: 200 }, (_, i) => payload(100 + i, 1 + ((i * 397) % 3000)));
    for (const message of sent) ws.send(message);
    await eventually(() => expect(messages.length).toBe(sent.length), 20_000, 10);
    messages.forEach((message, i) => expect(message.equals(sent[i])).toBe(true));
    ws.close();
    await once(ws, 'close');
    wss.close();
  });

  it('delivers nothing in a blackhole, closes nothing, and delivers it all once healed', async () => {
    const { link, echo } = await startLink({ seed: 13 }); // no delay: without the blackhole, bytes go through at once
    const client = await connectTo(link.port);
    const back = collect(client);
    client.write('before');
    await back.until(6);
    const readBefore = echo.received;

    await link.blackhole();
    let healing = false;
    client.on('data', () => expect(healing).toBe(true));
    const held = payload(4, 20_000);
    client.write(held);
    // The proxy has every byte, and gives none to either side.
    await eventually(async () => expect((await link.stats()).queued.up).toBe(held.length), 10_000, 10);
    expect(echo.received).toBe(readBefore);
    expect(back.length).toBe(6);
    expect(client.destroyed).toBe(false);
    expect((await link.stats()).blackholed).toBe(true);

    healing = true;
    await link.heal();
    await back.until(6 + held.length);
    expect(back.bytes().subarray(6).equals(held)).toBe(true);
    client.destroy();
  });

  it('reports the delay it imposed on each connection’s first packets (from the end of a blackhole for those it held), and which carried given bytes', async () => {
    const { link } = await startLink({ seed: 15, up: { delayMs: 40 }, down: { delayMs: 30 } });
    const first = await connectTo(link.port);
    const firstBack = collect(first);
    first.write('ping');
    await firstBack.until(4);
    await link.blackhole();
    first.write('held!');
    await eventually(async () => expect((await link.stats()).queued.up).toBe(5), 10_000, 10);
    await link.heal();
    await firstBack.until(9);
    const second = await connectTo(link.port);
    const secondBack = collect(second);
    second.write('x');
    await secondBack.until(1);

    const { recent } = await link.stats();
    expect(recent.map((trace) => trace.index)).toEqual([0, 1]);
    const [one, two] = recent;
    expect(one.up.map(({ offset, length }) => [offset, length])).toEqual([
      [0, 4],
      [4, 5],
    ]);
    expect(one.down.map(({ offset, length }) => [offset, length])).toEqual([
      [0, 4],
      [4, 5],
    ]);
    for (const packet of one.up) expect(packet.delayMs).toBeGreaterThanOrEqual(40);
    for (const packet of [...one.down, ...two.down]) expect(packet.delayMs).toBeGreaterThanOrEqual(30);
    // The held packet waited through the blackhole too, which is not counted as the link's delay.
    const held = one.up[1];
    expect(held.deliveredAt - held.takenAt).toBeGreaterThan(held.delayMs);
    // Each echo was read from the server after its request reached it.
    one.down.forEach((packet, i) => expect(packet.takenAt).toBeGreaterThanOrEqual(one.up[i].deliveredAt));
    expect(two.up).toHaveLength(1);
    expect(two.acceptedAt).toBeGreaterThanOrEqual(one.acceptedAt);
    // Which packet carried given bytes: the most recent connection that has them.
    expect(await link.locate('down', 'ld!')).toEqual({ connection: 0, packet: one.down[1] });
    expect(await link.locate('up', 'x')).toEqual({ connection: 1, packet: two.up[0] });
    expect(await link.locate('up', 'nowhere')).toBeNull();
    first.destroy();
    second.destroy();
  });

  it('applies new parameters to bytes that arrive afterwards', async () => {
    const { link } = await startLink({ seed: 14 });
    const client = await connectTo(link.port);
    const back = collect(client);
    client.write('fast');
    await back.until(4);
    const params = await link.set({ up: { delayMs: 3_600_000 } });
    expect(params.up.delayMs).toBe(3_600_000);
    expect(params.down.delayMs).toBe(0);
    client.write('slow');
    await eventually(async () => expect((await link.stats()).queued.up).toBe(4), 10_000, 10);
    expect(back.length).toBe(4);
    await expect(link.set({ up: { loss: 2 } })).rejects.toThrow(/up.loss/);
    client.destroy();
  });

  it('resets every connection with an RST on both sides', async () => {
    const { link, echo } = await startLink({ seed: 15 });
    const clients = [await connectTo(link.port), await connectTo(link.port)];
    for (const client of clients) {
      const back = collect(client);
      client.write('x');
      await back.until(1);
    }
    const reasons = clients.map(closeReason);
    expect(await link.reset()).toBe(2);
    expect(await Promise.all(reasons)).toEqual(['ECONNRESET', 'ECONNRESET']);
    await eventually(() => expect(echo.errors).toEqual(['ECONNRESET', 'ECONNRESET']));
    const stats = await link.stats();
    expect(stats.resets).toBe(2);
    expect(stats.connections.open).toBe(0);
  });

  it('roams: connections reset, a new port that works (blackhole or not), the old one refused', async () => {
    const { link } = await startLink({ seed: 16, ...bothWays({ delayMs: 5 }) });
    const oldPort = link.port;
    const client = await connectTo(oldPort);
    const back = collect(client);
    client.write('x');
    await back.until(1);
    const reason = closeReason(client);

    await link.blackhole(); // the old network dies; the new one works
    const newPort = await link.roam();
    expect(newPort).not.toBe(oldPort);
    expect(link.port).toBe(newPort);
    expect(await reason).toBe('ECONNRESET');

    expect(await closeReason(connect(oldPort, '127.0.0.1'))).toBe('ECONNREFUSED');

    const again = await connectTo(newPort);
    const backAgain = collect(again);
    again.write('after the roam');
    await backAgain.until(14);
    expect(backAgain.bytes().toString()).toBe('after the roam');
    const stats = await link.stats();
    expect(stats).toMatchObject({ port: newPort, roams: 1, resets: 1, blackholed: false, connections: { open: 1, total: 2 } });
    again.destroy();
  });

  it('ends its process when the controller’s process dies', async () => {
    const echo = await startEcho();
    cleanups.push(echo.close);
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'link-holder.ts'), String(echo.port)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const [line] = (await once(createInterface({ input: holder.stdout }), 'line')) as [string];
    const { pid, port } = JSON.parse(line) as { pid: number; port: number };
    const client = await connectTo(port); // the link works
    client.destroy();
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    await eventually(() => expect(running(pid)).toBe(false), 10_000);
  });
});
