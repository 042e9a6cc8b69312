/**
 * The control channel between the FlakyLink controller (./flaky-link.ts) and the proxy's process
 * (./link-process.ts): one JSON object per line, requests on the process's stdin, replies on its
 * stdout, each reply carrying its request's id. Requests are handled one at a time, in order.
 */
import type { LinkParams, LinkSettings } from './link-model.js';
import type { LinkStats, Located, ProxyOptions } from './proxy.js';

export type Command =
  | { command: 'start'; options: ProxyOptions }
  | { command: 'set'; settings: LinkSettings }
  | { command: 'blackhole' }
  | { command: 'heal' }
  | { command: 'reset' }
  | { command: 'roam' }
  | { command: 'stats' }
  | { command: 'locate'; direction: 'up' | 'down'; text: string }
  | { command: 'close' };

/** What each command answers. */
export interface Results {
  start: number;
  set: LinkParams;
  blackhole: null;
  heal: null;
  reset: number;
  roam: number;
  stats: LinkStats;
  locate: Located | null;
  close: null;
}

export type Request = Command & { id: number };

export type Reply = { id: number; result: Results[Command['command']] } | { id: number; error: string };
