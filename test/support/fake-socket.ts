import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { newClientExtras, type TerminalClient } from '../../src/terminal/terminal-clients.js';

/** A terminal client's WebSocket for unit specs: the test sets its buffered amount; it records what is sent and how it was closed. */
export class FakeSocket extends EventEmitter {
  readyState: number = WebSocket.OPEN;
  bufferedAmount = 0;
  readonly sent: Record<string, unknown>[] = [];
  closedWith: number | null = null;

  send(data: Buffer): void {
    this.sent.push(JSON.parse(data.toString()) as Record<string, unknown>);
  }

  close(code: number): void {
    this.closedWith = code;
    this.readyState = WebSocket.CLOSED;
  }
}

/** A terminal client on a FakeSocket, as the gateway makes one before it hands it to a session (`connecting`, nothing queued). */
export function fakeTerminalClient(id: number, clientId: string | null = null): [TerminalClient, FakeSocket] {
  const socket = new FakeSocket();
  const client: TerminalClient = {
    id,
    ws: socket as unknown as WebSocket,
    userId: 'u',
    sessionId: 's',
    cols: null,
    rows: null,
    mode: 'connecting',
    queue: [],
    violations: 0,
    inputTokens: 1 << 20,
    inputRefilledAt: Date.now(),
    firstMessageTimer: null,
    extras: newClientExtras(clientId, `test:${id}`),
  };
  return [client, socket];
}
