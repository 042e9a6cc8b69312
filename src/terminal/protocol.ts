/**
 * The terminal WebSocket protocol: JSON text frames, exactly the mobile client's, plus additions
 * old clients ignore (`offset`, `resume`, `reset`, `status`). Documented in docs/terminal.md.
 */

export type ClientMessage =
  { type: 'input'; data: string } | { type: 'resize'; cols: number; rows: number } | { type: 'ping' } | { type: 'resume'; offset: number };

export interface WelcomeMessage {
  type: 'welcome';
  message: string;
  environment: { id: string; name: string; template: string; status: string };
  session: { name: string; offset: number; cols: number; rows: number; resumed: boolean };
}

export type ServerMessage =
  | WelcomeMessage
  | { type: 'output'; data: string; offset: number }
  | { type: 'error'; message: string; code?: number }
  | { type: 'pong' }
  | { type: 'reset'; offset: number }
  | { type: 'status'; status: string; phase: string; message: string | null };

export const MIN_COLS = 1;
export const MAX_COLS = 1000;
export const MIN_ROWS = 1;
export const MAX_ROWS = 500;
/** Largest `input.data` accepted in one frame (UTF-16 code units ≈ bytes for typed text). */
export const MAX_INPUT_CHARS = 64 * 1024;

export type Parsed = { ok: true; message: ClientMessage } | { ok: false; error: string };

const isInt = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);

/** Validates one incoming frame. Binary frames, bad JSON and unknown shapes are errors, never crashes. */
export function parseClientMessage(raw: Buffer, isBinary: boolean): Parsed {
  if (isBinary) return { ok: false, error: 'Binary frames are not accepted; send JSON text frames' };
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    return { ok: false, error: 'Malformed frame: not JSON' };
  }
  if (typeof value !== 'object' || value === null) return { ok: false, error: 'Malformed frame: expected a JSON object' };
  const frame = value as Record<string, unknown>;
  switch (frame.type) {
    case 'input':
      if (typeof frame.data !== 'string') return { ok: false, error: 'input.data must be a string' };
      if (frame.data.length > MAX_INPUT_CHARS) return { ok: false, error: `input.data is longer than ${MAX_INPUT_CHARS} characters` };
      return { ok: true, message: { type: 'input', data: frame.data } };
    case 'resize':
      if (
        !isInt(frame.cols) ||
        !isInt(frame.rows) ||
        frame.cols < MIN_COLS ||
        frame.cols > MAX_COLS ||
        frame.rows < MIN_ROWS ||
        frame.rows > MAX_ROWS
      ) {
        return { ok: false, error: `resize needs integer cols ${MIN_COLS}-${MAX_COLS} and rows ${MIN_ROWS}-${MAX_ROWS}` };
      }
      return { ok: true, message: { type: 'resize', cols: frame.cols, rows: frame.rows } };
    case 'ping':
      return { ok: true, message: { type: 'ping' } };
    case 'resume':
      if (!isInt(frame.offset) || frame.offset < 0) return { ok: false, error: 'resume.offset must be a non-negative integer' };
      return { ok: true, message: { type: 'resume', offset: frame.offset } };
    default:
      return { ok: false, error: `Unknown message type ${JSON.stringify(frame.type)}` };
  }
}
