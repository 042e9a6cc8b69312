/**
 * The flaky link's TCP proxy: listens on 127.0.0.1 and forwards each accepted connection to the
 * target through two pipes (./pipe.ts), one per direction, timed by the link model. Faults on
 * command: blackhole and heal, reset (every connection gets a TCP RST, both sides), roam (reset,
 * then a new listening port, the old one closed, and no blackhole), and new parameters at any time (they apply to
 * bytes that arrive afterwards). It runs in a process of its own (./link-process.ts), driven by
 * the FlakyLink controller (./flaky-link.ts); nothing here needs that, so it can run in process too.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import { applySettings, DEFAULT_LINK, LinkDirection, StreamSchedule, type LinkParams, type LinkSettings } from './link-model.js';
import { Pipe, type PacketTrace } from './pipe.js';

export type { PacketTrace } from './pipe.js';

/** The first packets of one connection, each direction, as delivered (times: `performance.timeOrigin + performance.now()`). */
export interface ConnectionTrace {
  /** The connection's number (0 for the first accepted). */
  index: number;
  /** When the proxy accepted it. */
  acceptedAt: number;
  /** Client to server, then server to client: the first TRACED_PACKETS packets delivered. */
  up: PacketTrace[];
  down: PacketTrace[];
}

/** A packet found by locate(): the connection's number and the packet. */
export interface Located {
  connection: number;
  packet: PacketTrace;
}

/** Packets traced per direction of a connection, and connections whose traces are kept (the most recent). */
export const TRACED_PACKETS = 64;
export const TRACED_CONNECTIONS = 16;

export interface ProxyOptions {
  /** Where connections go: the API server. */
  target: { host: string; port: number };
  /** Seeds every decision of jitter and loss. */
  seed: number;
  /** The port to listen on first (0 or absent: a free one). */
  port?: number;
  /** The link's parameters, over the defaults (a perfect link). */
  link?: LinkSettings;
}

export interface LinkStats {
  /** The port it listens on now. */
  port: number;
  connections: { open: number; total: number };
  /** Connections cut with an RST by reset() or roam(). */
  resets: number;
  roams: number;
  blackholed: boolean;
  /** Bytes delivered, client to server (up) and server to client (down). */
  bytes: { up: number; down: number };
  /** Bytes taken and not yet delivered. */
  queued: { up: number; down: number };
  /** Segments lost (each a stall), per direction. */
  lost: { up: number; down: number };
  params: LinkParams;
  /**
   * The delays the link imposed on the first packets of the most recent connections (oldest
   * first): what a benchmark subtracts from a time it measured through the link to find the time
   * spent outside it (e.g. a reconnect's request and the response carrying its first frame).
   */
  recent: ConnectionTrace[];
}

interface Connection {
  client: Socket;
  upstream: Socket;
  up: Pipe;
  down: Pipe;
}

const HOST = '127.0.0.1';

export class FlakyLinkProxy {
  private readonly up = new LinkDirection('up');
  private readonly down = new LinkDirection('down');
  private readonly connections = new Set<Connection>();
  private params: LinkParams = DEFAULT_LINK;
  private server: Server | null = null;
  private port = 0;
  private accepted = 0;
  private resets = 0;
  private roams = 0;
  private blackholed = false;
  private readonly delivered = { up: 0, down: 0 };
  private readonly lost = { up: 0, down: 0 };
  private readonly traces: ConnectionTrace[] = [];
  /** The bytes of each traced packet, for locate(). */
  private readonly tracedBytes = new Map<ConnectionTrace, { up: Buffer[]; down: Buffer[] }>();

  constructor(private readonly options: ProxyOptions) {
    this.set(options.link ?? {});
  }

  /** Listens and resolves with the port. */
  async start(): Promise<number> {
    await this.listen(this.options.port ?? 0);
    return this.port;
  }

  set(settings: LinkSettings): LinkParams {
    this.params = applySettings(this.params, settings);
    this.up.configure(this.params);
    this.down.configure(this.params);
    return this.params;
  }

  blackhole(): void {
    this.blackholed = true;
    for (const connection of this.connections) for (const pipe of [connection.up, connection.down]) pipe.hold();
  }

  heal(): void {
    this.blackholed = false;
    for (const connection of this.connections) for (const pipe of [connection.up, connection.down]) pipe.release();
  }

  /** Every open connection gets an RST, on both sides. Resolves with how many were reset. */
  reset(): number {
    const count = this.connections.size;
    for (const connection of [...this.connections]) this.drop(connection, true);
    this.resets += count;
    return count;
  }

  /**
   * Resets every connection, listens on a new port and closes the old one; a blackhole ends (the new
   * network works). Resolves with the new port.
   */
  async roam(): Promise<number> {
    this.reset();
    this.blackholed = false;
    const old = this.server;
    await this.listen(0); // while the old port is still taken: a different one
    await closeServer(old);
    this.roams += 1;
    return this.port;
  }

  stats(): LinkStats {
    const queued = { up: 0, down: 0 };
    for (const connection of this.connections) {
      queued.up += connection.up.queued;
      queued.down += connection.down.queued;
    }
    return {
      port: this.port,
      connections: { open: this.connections.size, total: this.accepted },
      resets: this.resets,
      roams: this.roams,
      blackholed: this.blackholed,
      bytes: { ...this.delivered },
      queued,
      lost: { ...this.lost },
      params: this.params,
      recent: this.traces.map((trace) => ({ ...trace, up: [...trace.up], down: [...trace.down] })),
    };
  }

  /**
   * Where `text` ends in the traced packets of a direction, most recent connection first: the
   * connection and the packet that carries its last byte (so a benchmark learns which packet
   * completed a message it received, and the delay the link imposed on that one). Null when no
   * traced packet holds it.
   */
  locate(direction: 'up' | 'down', text: string): Located | null {
    const needle = Buffer.from(text, 'utf8');
    for (const trace of [...this.traces].reverse()) {
      const bytes = Buffer.concat(this.tracedBytes.get(trace)?.[direction] ?? []);
      const at = bytes.indexOf(needle);
      if (at < 0) continue;
      const last = at + needle.length - 1;
      const packet = trace[direction].find((candidate) => candidate.offset <= last && last < candidate.offset + candidate.length);
      if (packet) return { connection: trace.index, packet };
    }
    return null;
  }

  /** Stops listening and closes every connection (without an RST). */
  async close(): Promise<void> {
    for (const connection of [...this.connections]) this.drop(connection, false);
    await closeServer(this.server);
    this.server = null;
  }

  private async listen(port: number): Promise<void> {
    const server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  private accept(client: Socket): void {
    const index = this.accepted++;
    const upstream = connect({ host: this.options.target.host, port: this.options.target.port, allowHalfOpen: true });
    const now = () => performance.now();
    const link = () => this.params;
    const trace: ConnectionTrace = { index, acceptedAt: performance.timeOrigin + now(), up: [], down: [] };
    const traced = { up: [] as Buffer[], down: [] as Buffer[] };
    this.traces.push(trace);
    this.tracedBytes.set(trace, traced);
    if (this.traces.length > TRACED_CONNECTIONS) this.tracedBytes.delete(this.traces.shift()!);
    const pipe = (from: Socket, to: Socket, direction: LinkDirection) => {
      const { name } = direction;
      const events = {
        delivered: (bytes: number) => (this.delivered[name] += bytes),
        lost: () => (this.lost[name] += 1),
        traced: (packet: PacketTrace, data: Buffer) => {
          const packets = trace[name];
          if (packets.length >= TRACED_PACKETS) return;
          const { timeOrigin } = performance;
          packets.push({ ...packet, takenAt: timeOrigin + packet.takenAt, deliveredAt: timeOrigin + packet.deliveredAt });
          traced[name].push(Buffer.from(data)); // a copy: the read it came from is not kept
        },
      };
      return new Pipe(from, to, new StreamSchedule(direction, this.options.seed, index), link, now, events, this.blackholed);
    };
    const connection: Connection = { client, upstream, up: pipe(client, upstream, this.up), down: pipe(upstream, client, this.down) };
    this.connections.add(connection);
    for (const socket of [client, upstream]) socket.setNoDelay(true);
    // An RST (or any error) on one side is passed on to the other as an RST.
    client.on('error', () => resetSocket(upstream));
    upstream.on('error', () => resetSocket(client));
    let open = 2;
    const closed = () => {
      if (--open > 0) return;
      connection.up.stop();
      connection.down.stop();
      this.connections.delete(connection);
    };
    client.once('close', closed);
    upstream.once('close', closed);
  }

  private drop(connection: Connection, reset: boolean): void {
    connection.up.stop();
    connection.down.stop();
    for (const socket of [connection.client, connection.upstream]) {
      if (reset) resetSocket(socket);
      else socket.destroy();
    }
    this.connections.delete(connection);
  }
}

/** An RST (once connected, if it is still connecting), unless the socket is already gone. */
function resetSocket(socket: Socket): void {
  if (!socket.destroyed) socket.resetAndDestroy();
}

function closeServer(server: Server | null): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}
