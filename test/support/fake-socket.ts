import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';

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
