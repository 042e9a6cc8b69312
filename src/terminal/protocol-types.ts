/**
 * The terminal WebSocket protocol's messages as they are on the wire (JSON text frames, snake_case
 * fields): declared once, for the server (protocol.ts re-exports them next to the parser) and for
 * the browser console (console/src/terminal/connection-types.ts, which imports them as types only,
 * so nothing of this file reaches its bundle). Types only: no Node.js types, no runtime code, as
 * both TypeScript projects (tsconfig.json and console/tsconfig.json, DOM without Node) compile it.
 * Documented in docs/terminal.md.
 */

export type InputFrame = {
  type: 'input';
  data: string;
  /** The client's sequence number of this input (1, 2, 3… per client_id): written once, in order. */
  seq?: number;
  /** True on every chunk but the last of one logical input (`"part":"more"`). */
  more?: boolean;
};

export type ClientMessage =
  | InputFrame
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'ping' }
  | { type: 'resume'; offset: number }
  | { type: 'received'; offset: number };

export interface WelcomeMessage {
  type: 'welcome';
  message: string;
  environment: { id: string; name: string; template: string; status: string };
  session: { name: string; offset: number; cols: number; rows: number; resumed: boolean };
  /** Only for a connection with `client_id`: the last seq of that client written to the terminal. */
  input?: { client_id: string; seq: number };
}

/** The pane's modes as read at stream offset `offset` (snake_case on the wire). */
export interface ModesMessage {
  type: 'modes';
  offset: number;
  echo: boolean | null;
  canonical: boolean | null;
  alt_screen: boolean;
  cursor_keys: 'normal' | 'application';
  bracketed_paste: boolean;
  copy_mode: boolean;
}

/** The environment's status while the terminal waits for it (or after it stopped). */
export interface StatusMessage {
  type: 'status';
  status: string;
  phase: string;
  message: string | null;
}

export type ServerMessage =
  | WelcomeMessage
  | { type: 'output'; data: string; offset: number; ack?: number }
  | { type: 'error'; message: string; code?: number }
  | { type: 'pong' }
  | { type: 'reset'; offset: number }
  | StatusMessage
  | { type: 'ack'; seq: number }
  | ModesMessage;
