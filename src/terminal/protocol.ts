/**
 * The terminal WebSocket protocol: JSON text frames, exactly the mobile client's, plus additions
 * old clients ignore (`offset`, `resume`, `reset`, `status`, and the low-latency additions: input
 * `seq`/`part`, `received`, `ack`, `modes`, welcome `input`). The messages' types are in
 * protocol-types.ts (shared with the console); here, their limits and the parser of client frames.
 * Documented in docs/terminal.md.
 */

import type { ClientMessage, InputFrame } from './protocol-types.js';

export type { ClientMessage, InputFrame, ModesMessage, ServerMessage, StatusMessage, WelcomeMessage } from './protocol-types.js';

export const MIN_COLS = 1;
export const MAX_COLS = 1000;
export const MIN_ROWS = 1;
export const MAX_ROWS = 500;
/** Largest `input.data` accepted in one frame (UTF-16 code units ≈ bytes for typed text). */
export const MAX_INPUT_CHARS = 64 * 1024;
/** A client's `client_id` query parameter: chosen by the client, kept across its reconnects. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

export type Parsed = { ok: true; message: ClientMessage } | { ok: false; error: string };

const isInt = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);
const isOffset = (value: unknown): value is number => isInt(value) && value >= 0 && value <= Number.MAX_SAFE_INTEGER;

function parseInput(frame: Record<string, unknown>): Parsed {
  if (typeof frame.data !== 'string') return { ok: false, error: 'input.data must be a string' };
  if (frame.data.length > MAX_INPUT_CHARS) return { ok: false, error: `input.data is longer than ${MAX_INPUT_CHARS} characters` };
  const message: InputFrame = { type: 'input', data: frame.data };
  if (frame.seq !== undefined) {
    if (!isOffset(frame.seq) || frame.seq < 1) return { ok: false, error: 'input.seq must be a positive integer' };
    message.seq = frame.seq;
  }
  if (frame.part !== undefined) {
    if (frame.part !== 'more') return { ok: false, error: 'input.part must be "more" when present' };
    message.more = true;
  }
  return { ok: true, message };
}

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
      return parseInput(frame);
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
    case 'received':
      if (!isOffset(frame.offset)) return { ok: false, error: 'received.offset must be a non-negative integer' };
      return { ok: true, message: { type: 'received', offset: frame.offset } };
    default:
      return { ok: false, error: `Unknown message type ${JSON.stringify(frame.type)}` };
  }
}
