import type { TerminalModes } from '../mode-hints.js';
import { fieldMap } from './stream-entries.js';

/**
 * What the owner's output-stream entries carry besides bytes (docs/terminal.md, "Several
 * replicas"): `a`, the acks (input written before the entry's first byte was read: `writer=seq`
 * pairs joined by `,`; a writer is a client_id or a connection key, neither holds `=` or `,`), and
 * `o`, the terminal's modes (JSON) when they changed. An entry of hints only (no `d`) holds at the
 * stream's end offset; replicas that do not know these fields skip them.
 */
export interface StreamHints {
  acks: [writer: string, seq: number][];
  modes: { modes: TerminalModes; offset: number } | null;
}

export const ACKS_FIELD = 'a';
export const MODES_FIELD = 'o';

export const encodeAcks = (acks: Iterable<[string, number]>): string => [...acks].map(([writer, seq]) => `${writer}=${seq}`).join(',');

export function decodeAcks(text: string): [string, number][] {
  const acks: [string, number][] = [];
  for (const pair of text.split(',')) {
    const at = pair.lastIndexOf('=');
    const seq = Number(pair.slice(at + 1));
    if (at > 0 && Number.isSafeInteger(seq) && seq > 0) acks.push([pair.slice(0, at), seq]);
  }
  return acks;
}

/** The modes and the offset they hold from, as JSON. */
export const encodeModes = (modes: TerminalModes, offset: number): string => JSON.stringify({ ...modes, offset });

const flagOrNull = (value: unknown): value is boolean | null => value === null || typeof value === 'boolean';

/** The modes of an `o` field (or of the metadata's `modes`); null for anything that is not one. */
export function decodeModes(text: string | null | undefined): { modes: TerminalModes; offset: number } | null {
  if (!text) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const m = value as Record<string, unknown>;
  if (!flagOrNull(m.echo) || !flagOrNull(m.canonical)) return null;
  if (typeof m.altScreen !== 'boolean' || typeof m.bracketedPaste !== 'boolean' || typeof m.copyMode !== 'boolean') return null;
  if (m.cursorKeys !== 'normal' && m.cursorKeys !== 'application') return null;
  if (typeof m.offset !== 'number' || !Number.isSafeInteger(m.offset)) return null;
  const modes: TerminalModes = {
    echo: m.echo,
    canonical: m.canonical,
    altScreen: m.altScreen,
    cursorKeys: m.cursorKeys,
    bracketedPaste: m.bracketedPaste,
    copyMode: m.copyMode,
  };
  return { modes, offset: m.offset };
}

/** The hints of one output-stream entry (its fields as XREAD returns them). */
export function hintsOf(fields: string[]): StreamHints {
  const map = fieldMap(fields);
  const acks = map.get(ACKS_FIELD);
  return { acks: acks ? decodeAcks(acks) : [], modes: decodeModes(map.get(MODES_FIELD)) };
}
