import { PacingWindow } from './pacing-window.js';

const KIB = 1024;

interface Link {
  /** Round trip without a queue (ms). */
  rttMs: number;
  /** Added to each one-way delay, drawn in ±jitterMs per packet (ms). */
  jitterMs?: number;
  /** Bytes per ms towards the client; unlimited when absent. */
  bytesPerMs?: number;
  /** Bytes per ms the program writes (the backlog grows by it). */
  producerBytesPerMs: number;
  seconds: number;
}

interface Outcome {
  window: PacingWindow;
  /** Milliseconds in the second half of the run when the window held back output that was waiting. */
  heldLateMs: number;
}

/**
 * A server pacing one client through a link, in simulated milliseconds: output is sent in frames
 * of up to 16 KiB while the window allows, the link delivers them (at its rate, after its delay),
 * and the client reports what it received as the console does (at once when it first has some
 * unreported, then every 16 KiB or 100 ms).
 */
function simulate(link: Link, initialBytes = 32 * KIB): Outcome {
  const window = new PacingWindow(initialBytes, 0);
  let seed = 15;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const oneWay = (): number => link.rttMs / 2 + (random() * 2 - 1) * (link.jitterMs ?? 0);
  const deliveries: { at: number; end: number }[] = [];
  const reports: { at: number; offset: number }[] = [];
  let backlog = 0;
  let sentEnd = 0;
  let received = 0;
  let linkFreeAt = 0;
  let clientEnd = 0;
  let clientReported = 0;
  let clientReportedAt = Number.NEGATIVE_INFINITY;
  let lastArrival = 0;
  let heldLateMs = 0;
  const total = link.seconds * 1000;
  for (let now = 0; now < total; now += 1) {
    backlog += link.producerBytesPerMs;
    while (reports.length > 0 && reports[0].at <= now) {
      received = Math.max(received, reports.shift()!.offset);
      window.reported(received, now);
    }
    while (backlog >= 1) {
      const frame = Math.min(16 * KIB, Math.floor(backlog));
      if (sentEnd > received && sentEnd - received + frame > window.bytes) {
        if (now >= total / 2) heldLateMs += 1;
        break;
      }
      backlog -= frame;
      sentEnd += frame;
      window.sent(sentEnd, sentEnd - received, now);
      const leaves = link.bytesPerMs === undefined ? now : Math.max(now, linkFreeAt) + frame / link.bytesPerMs;
      linkFreeAt = leaves;
      // Bytes are never reordered on the link.
      lastArrival = Math.max(lastArrival, leaves + oneWay());
      deliveries.push({ at: lastArrival, end: sentEnd });
    }
    while (deliveries.length > 0 && deliveries[0].at <= now) clientEnd = deliveries.shift()!.end;
    const unreported = clientEnd - clientReported;
    if (unreported > 0 && (clientReported === 0 || unreported >= 16 * KIB || now - clientReportedAt >= 100)) {
      clientReported = clientEnd;
      clientReportedAt = now;
      reports.push({ at: now + oneWay(), offset: clientEnd });
    }
  }
  return { window, heldLateMs };
}

describe('PacingWindow (a paced client’s window, adapted to its link)', () => {
  it('grows on a fast link with a long, jittery round trip until the window no longer holds the output back', () => {
    // The phone link of the bench: 250 ± 50 ms, no bandwidth limit, a producer at 110 KB/s, which a
    // fixed 32 KiB window (32 KiB per round trip and report interval) cannot carry.
    const { window, heldLateMs } = simulate({ rttMs: 250, jitterMs: 25, producerBytesPerMs: 110, seconds: 60 });
    expect(window.bytes).toBeGreaterThan(40 * KIB);
    expect(heldLateMs).toBe(0);
  });

  it('shrinks on a slow link that a flood fills, down to its floor, and a short flood already leaves less in flight', () => {
    // 500 kbit/s, 300 ms: the bench's 1 Mbit/s link carrying `yes` (JSON doubles `y\r\n` on the wire).
    const slow = { rttMs: 300, bytesPerMs: 62, producerBytesPerMs: 1000 };
    expect(simulate({ ...slow, seconds: 30 }).window.bytes).toBe(16 * KIB);
    expect(simulate({ ...slow, seconds: 2 }).window.bytes).toBeLessThan(32 * KIB);
  });

  it('grows on a link with a limited rate whose round trip holds much more than the window', () => {
    // 4 Mbit/s, 300 ms: about 150 KB in flight before any queue builds.
    expect(simulate({ rttMs: 300, bytesPerMs: 500, producerBytesPerMs: 1000, seconds: 30 }).window.bytes).toBeGreaterThan(64 * KIB);
  });

  it('stays within its floor and its cap', () => {
    const fast = simulate({ rttMs: 250, producerBytesPerMs: 10_000, seconds: 60 }).window;
    expect(fast.bytes).toBe(8 * 32 * KIB);
    const slow = simulate({ rttMs: 300, bytesPerMs: 5, producerBytesPerMs: 1000, seconds: 60 }).window;
    expect(slow.bytes).toBe(16 * KIB);
  });

  it('does not grow while the program, not the window, limits the output', () => {
    const { window } = simulate({ rttMs: 250, jitterMs: 25, producerBytesPerMs: 10, seconds: 30 });
    expect(window.bytes).toBe(32 * KIB);
  });

  it('times a report against the send that carried its last byte, and forgets sends on a jump', () => {
    const window = new PacingWindow(32 * KIB, 0);
    window.sent(1000, 1000, 0);
    window.sent(2000, 2000, 50);
    window.reported(1500, 300); // carried by the send at 50: 250 ms
    expect(window.delays).toEqual({ smoothed: 250, min: 250 });
    window.reported(2000, 400); // the same send, now reported whole: 350 ms
    expect(window.delays?.min).toBe(250);
    expect(window.delays?.smoothed).toBe(275);
    window.sent(3000, 1000, 500);
    window.restart(3000);
    window.sent(3500, 500, 800);
    window.reported(2500, 900); // what was in flight at the jump: before it
    window.reported(3000, 900); // the jump's offset: not sent after it
    expect(window.delays?.smoothed).toBe(275);
    window.reported(3500, 1100);
    expect(window.delays?.min).toBe(250);
    expect(window.delays?.smoothed).toBe(275 + (300 - 275) / 4);
  });

  it('starts with the window given within its floor and cap, and times no report of what was sent before it was kept', () => {
    expect(new PacingWindow(32 * KIB, 0, 1024 * KIB).bytes).toBe(256 * KIB);
    expect(new PacingWindow(32 * KIB, 0, 1).bytes).toBe(16 * KIB);
    const window = new PacingWindow(32 * KIB, 5000);
    window.sent(6000, 1000, 100);
    window.reported(5000, 120); // sent before it was kept (a resume): untimed, not the send at 100
    expect(window.delays).toBeNull();
    window.reported(6000, 400);
    expect(window.delays).toEqual({ smoothed: 300, min: 300 });
  });

  it('never starts below a small initial window', () => {
    expect(new PacingWindow(4096, 0).bytes).toBe(4096);
    const window = new PacingWindow(4096, 0);
    for (let at = 0; at < 100; at += 1) {
      window.sent(at * 100 + 100, 100, at * 10);
      window.reported(at * 100 + 100, at * 10 + 2000 * (at % 2));
    }
    expect(window.bytes).toBeGreaterThanOrEqual(4096);
  });
});
