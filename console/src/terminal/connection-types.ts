import type { ModesMessage, StatusMessage, WelcomeMessage as ServerWelcome } from '../../../src/terminal/protocol-types.js';
import type { RefreshOutcome } from '../auth/session.js';
import type { OutputSink } from './output-sink.js';

/** The terminal connection's types and close codes (connection.ts is the client). */

export type ConnectionState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected' }
  | { kind: 'reconnecting'; attempt: number; retryAt: number; reason: string }
  | { kind: 'waiting'; reason: string }
  | { kind: 'disconnected'; reason: string };

/**
 * The server's messages, declared once for the server and the console (src/terminal/protocol-types.ts;
 * types only, so nothing of the server reaches the bundle). A welcome is read defensively: without
 * `environment` or `session`, the console still connects.
 */
export type { ModesMessage, StatusMessage } from '../../../src/terminal/protocol-types.js';
export type WelcomeMessage = Omit<ServerWelcome, 'environment' | 'session'> & Partial<Pick<ServerWelcome, 'environment' | 'session'>>;

/** What the connection needs of a WebSocket: the browser's, or a fake in a unit spec. */
export interface SocketLike {
  readonly readyState: number;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Where the client id is kept: sessionStorage (per tab), or nothing. */
export type IdStorage = Pick<Storage, 'getItem' | 'setItem'>;

export interface ConnectionOptions {
  environmentId: string;
  sink: OutputSink;
  /** A valid access token (refreshed when about to expire), null when signed out; throws when the server cannot be reached. */
  accessToken(): Promise<string | null>;
  refresh(): Promise<RefreshOutcome>;
  /** Resolves once the environment runs again (after 4009). */
  untilRunning(signal: AbortSignal): Promise<unknown>;
  size(): { cols: number; rows: number };
  onState(state: ConnectionState): void;
  onStatus?(message: StatusMessage): void;
  onWelcome?(message: WelcomeMessage): void;
  /** An `output` frame, before its data is handed to the sink; `ack` null when the frame has none. */
  onOutput?(data: string, offset: number, ack: number | null): void;
  /** An `ack` message: input up to `seq` was written, and no output acknowledging it came within 50 ms. */
  onAck?(seq: number): void;
  /** A `modes` frame. */
  onModes?(message: ModesMessage): void;
  /** A ping's round trip (ms), at each pong. */
  onRoundTrip?(ms: number): void;
  /** Something the person should see (input refused). */
  onNotice?(text: string): void;
  /** The origin of the WebSocket, e.g. `wss://example.com`; default: this page's. */
  socketOrigin?: string;
  /** Opens the socket; default: the browser's WebSocket. */
  createSocket?(url: string, protocols: string[]): SocketLike;
  /** Where the client id is kept; default: sessionStorage (null: none, a new id per connection object). */
  storage?: IdStorage | null;
  /** Whether the device says it is online; default: navigator.onLine. */
  online?(): boolean;
}

/** Our own close code for a socket given up for silence (never sent by the server). */
export const CLIENT_TIMEOUT = 4000;

export function describeClose(code: number): string {
  switch (code) {
    case 1000:
      return 'The connection was closed';
    case 1001:
      return 'The server is restarting';
    case 1006:
      return 'The connection dropped';
    case 1009:
      return 'The server refused a frame that was too large';
    case CLIENT_TIMEOUT:
      return 'No answer from the server';
    case 4001:
      return 'Not signed in';
    case 4004:
      return 'Environment not found';
    case 4008:
      return 'The server closed the connection for invalid messages';
    case 4009:
      return 'The environment is not running';
    case 4010:
      return 'The server heard nothing from this device';
    case 4029:
      return 'Too many terminal connections';
    case 4500:
      return 'The terminal failed on the server';
    default:
      return `The connection closed (code ${code})`;
  }
}

const CLIENT_ID_KEY = 'devpocket.terminal.client_id.';

/** This tab's sessionStorage, null where there is none (or it is refused). */
export function tabStorage(): Storage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null;
  }
}

/**
 * The `client_id` of this tab for one environment: 22 random URL-safe characters, kept in
 * sessionStorage so that a reload goes on with it (and the server's memory of it).
 */
export function clientIdFor(environmentId: string, storage: IdStorage | null): string {
  const key = CLIENT_ID_KEY + environmentId;
  try {
    const kept = storage?.getItem(key);
    if (kept && /^[A-Za-z0-9_-]{16,64}$/.test(kept)) return kept;
  } catch {
    // storage refused (a private window): an id for this page only
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const id = btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
  try {
    storage?.setItem(key, id);
  } catch {
    // as above
  }
  return id;
}
