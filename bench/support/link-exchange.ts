import type { ConnectionTrace, Located, PacketTrace } from '../../test/support/flaky-link/flaky-link.js';
import { percentile } from './load.js';
import { round } from './process-stats.js';

/**
 * What the link imposed on one reconnect's exchange, from the proxy's own record of the packets
 * (FlakyLink.stats().recent, FlakyLink.locate()): the delay it applied to the request that opened
 * the new connection (client to server) and to the packet that completed the first output frame
 * (server to client, found by the frame's own bytes).
 * A first byte timed through the link, minus that round trip, is the time spent outside the link:
 * the client noticing and reconnecting, the server answering, the client reading the frame.
 *
 * Times are `performance.timeOrigin + performance.now()` in both processes (the bench's and the
 * proxy's), which the machine's one clock makes comparable.
 */
export interface Exchange {
  /** From the event (heal, roam) to the first live byte on the client. */
  totalMs: number;
  /** The link's round trip on this exchange: upMs + downMs. */
  linkMs: number;
  /** totalMs - linkMs: the time spent outside the link. */
  outsideMs: number;
  /** The delay the link applied to the request (the last packet the client sent before the server's first answer). */
  upMs: number;
  /** The delay the link applied to the packet that completed the first output frame. */
  downMs: number;
  /** From the event until the request could leave (a socket to open, or the link to heal). */
  beforeRequestMs: number;
  /** From the request's arrival at the server until the proxy read the first frame's last packet from it. */
  serverMs: number;
  /** From that packet's delivery until the client handled the frame. */
  clientMs: number;
}

/**
 * The exchange that carried a first live byte: `frame`, the packet that completed the frame
 * (FlakyLink.locate()), on its connection (from `recent`); the request is that connection's last
 * packet delivered to the server before the server's first answer was read. Null when the record
 * does not hold them.
 */
export function exchangeOf(recent: ConnectionTrace[], frame: Located, eventAt: number, firstByteAt: number): Exchange | null {
  const connection = recent.find((trace) => trace.index === frame.connection);
  if (!connection || connection.down.length === 0) return null;
  const answered = connection.down[0].takenAt;
  const request = lastBefore(connection.up, (packet) => packet.deliveredAt <= answered);
  if (!request) return null;
  const down = frame.packet;
  const totalMs = firstByteAt - eventAt;
  const linkMs = request.delayMs + down.delayMs;
  return {
    totalMs,
    linkMs,
    outsideMs: totalMs - linkMs,
    upMs: request.delayMs,
    downMs: down.delayMs,
    beforeRequestMs: request.deliveredAt - request.delayMs - eventAt,
    serverMs: down.takenAt - request.deliveredAt,
    clientMs: firstByteAt - down.deliveredAt,
  };
}

/** How an `output` frame ends on the wire (JSON as the server writes it): where the link's record finds it. */
export const outputFrameTail = (offset: number, ack: number | null): string => `"offset":${offset}${ack === null ? '' : `,"ack":${ack}`}}`;

function lastBefore(packets: PacketTrace[], test: (packet: PacketTrace) => boolean): PacketTrace | null {
  let found: PacketTrace | null = null;
  for (const packet of packets) if (test(packet)) found = packet;
  return found;
}

const ALLOWANCE_MS = 30;

/** Percentiles of each part of the exchanges, and the target: p99 of outsideMs within the allowance. */
export function describeExchanges(exchanges: Exchange[], unmatched: number): Record<string, unknown> {
  const summary = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const at = (p: number): number | null => (sorted.length === 0 ? null : round(percentile(sorted, p)));
    return { p50: at(50), p95: at(95), p99: at(99), max: at(100) };
  };
  const part = (key: keyof Exchange) => summary(exchanges.map((exchange) => exchange[key]));
  const outside = part('outsideMs');
  return {
    first_byte_minus_link_round_trip_ms: outside,
    target: `p99 <= ${ALLOWANCE_MS} ms (1 RTT, as the link imposed it on each exchange, + ${ALLOWANCE_MS} ms)`,
    met: outside.p99 !== null && outside.p99 <= ALLOWANCE_MS,
    link_round_trip_ms: part('linkMs'),
    parts_ms: {
      before_request: part('beforeRequestMs'),
      request_up: part('upMs'),
      server: part('serverMs'),
      frame_down: part('downMs'),
      client: part('clientMs'),
    },
    events_without_a_trace: unmatched,
  };
}
