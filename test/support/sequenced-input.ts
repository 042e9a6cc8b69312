import { randomBytes } from 'node:crypto';
import { eventually } from './eventually.js';
import type { ServerFrame, TerminalTestClient } from './terminal-client.js';

/** A fresh `client_id` (the console keeps one per tab and environment). */
export const newClientId = (): string => randomBytes(18).toString('base64url');

/** The highest input acknowledged to `client`: on its output frames (`ack`) or alone (`{"type":"ack"}`). */
export function ackOf(client: TerminalTestClient): number {
  let ack = 0;
  for (const frame of client.frames) {
    if (frame.type === 'output' && typeof frame.ack === 'number') ack = Math.max(ack, frame.ack);
    if (frame.type === 'ack' && typeof frame.seq === 'number') ack = Math.max(ack, frame.seq);
  }
  return ack;
}

/** The welcome's `input.seq` (the last seq of this client_id written), or null without one. */
export function welcomeSeq(welcome: ServerFrame): number | null {
  const input = welcome.input as { seq?: unknown } | undefined;
  return typeof input?.seq === 'number' ? input.seq : null;
}

/**
 * A client's numbered input, as the console keeps it: every input gets the next seq, and after a
 * reconnect what the server had not written (seq above the welcome's) is sent again, in order.
 */
export class SequencedInput {
  private readonly sent: { seq: number; data: string; more: boolean }[] = [];

  /** Sends `data` as the next seq on `client`; `more`: further parts of this input follow. */
  send(client: TerminalTestClient, data: string, more = false): number {
    const seq = this.sent.length + 1;
    this.sent.push({ seq, data, more });
    client.send({ type: 'input', data, seq, ...(more ? { part: 'more' } : {}) });
    return seq;
  }

  /** Records `data` as sent without sending it (lost on the way, as on a dropped link). */
  lose(data: string): number {
    this.sent.push({ seq: this.sent.length + 1, data, more: false });
    return this.sent.length;
  }

  /** Sends again, in order, everything numbered after `written`. */
  resend(client: TerminalTestClient, written: number): void {
    for (const { seq, data, more } of this.sent) {
      if (seq > written) client.send({ type: 'input', data, seq, ...(more ? { part: 'more' } : {}) });
    }
  }

  get last(): number {
    return this.sent.length;
  }

  /** Waits until `client` was told that everything sent so far is written. */
  async acked(client: TerminalTestClient, timeoutMs = 20_000): Promise<void> {
    await eventually(() => expect(ackOf(client)).toBeGreaterThanOrEqual(this.last), timeoutMs, 20);
  }
}

/** Runs `sha256sum <file>` in the terminal and returns the hash it printed. */
export async function sha256OnScreen(client: TerminalTestClient, file: string, send: (data: string) => void): Promise<string> {
  const marker = `sum-${randomBytes(4).toString('hex')}`;
  send(`sha256sum ${file} | sed 's/^/${marker}:/'\r`);
  const pattern = new RegExp(`${marker}:([0-9a-f]{64})`);
  return eventually(
    () => {
      const found = pattern.exec(client.screen);
      if (!found) throw new Error(`no ${marker} on screen: ${JSON.stringify(client.screen.slice(-300))}`);
      return found[1];
    },
    30_000,
    20,
  );
}

/** The first `modes` frame of `client` from frame index `from` on with every field of `wanted`. */
export function modesAfter(
  client: TerminalTestClient,
  from: number,
  wanted: Record<string, unknown>,
  timeoutMs = 20_000,
): Promise<ServerFrame> {
  return client.waitForFrame(
    (f) => f.type === 'modes' && client.frames.indexOf(f) >= from && Object.entries(wanted).every(([key, value]) => f[key] === value),
    timeoutMs,
  );
}

/** Sends `data` as the next seq of `input`, then waits for the modes it leads to. */
export async function sendForModes(
  client: TerminalTestClient,
  input: SequencedInput,
  data: string,
  wanted: Record<string, unknown>,
): Promise<void> {
  const from = client.frames.length;
  input.send(client, data);
  await modesAfter(client, from, wanted);
}
