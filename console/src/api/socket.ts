import { PROTOCOL } from '../terminal/connection.js';

/**
 * Opens one of the API's WebSockets (`path` under this origin, e.g. `/api/v1/ws/environments`),
 * signed in with the subprotocol `bearer.<token>` beside `devpocket.v1`, so the server echoes the
 * latter and the token stays out of the answer (docs/terminal.md#endpoint-and-authentication).
 */
export function openApiSocket(path: string, token: string): WebSocket {
  const origin = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;
  return new WebSocket(`${origin}${path}`, [PROTOCOL, `bearer.${token}`]);
}

/** Closes a socket this client is done with (1000), without its close handler running. */
export function closeQuietly(socket: WebSocket | null): void {
  if (!socket) return;
  socket.onclose = null;
  socket.close(1000);
}

/** The wait before reconnection attempt `attempt` (0, 1, …): 1 s doubling to 30 s, ±20 % so clients do not come back together. */
export function reconnectDelay(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.min(attempt, 10)) * (0.8 + 0.4 * Math.random());
}
