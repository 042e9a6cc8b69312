import { defineNamespace } from './define-namespace.js';

/** The terminal WebSocket: TERMINAL_GRACE_SECONDS, TERMINAL_REPLAY_BUFFER_BYTES, the process's memory budgets and the connection limits. */
export interface TerminalConfig {
  /** How long a session's upstream stays open after its last client left (quick reconnects are instant). */
  readonly graceMs: number;
  /** Output kept per session for resuming clients. */
  readonly replayBufferBytes: number;
  /** All sessions' replay buffers together (the largest are trimmed first). */
  readonly replayMemoryBytes: number;
  /** Output queued in all terminal sockets together (the largest queues are cut over first). */
  readonly sendQueueMemoryBytes: number;
  /** Output a client that reports `received` may have sent but unreported before it is behind. */
  readonly clientWindowBytes: number;
  readonly maxClientsPerEnvironment: number;
  readonly maxConnectionsPerUser: number;
}

export const terminalConfig = defineNamespace('terminal', (env): TerminalConfig => ({
  graceMs: (env.TERMINAL_GRACE_SECONDS ?? 60) * 1000,
  replayBufferBytes: env.TERMINAL_REPLAY_BUFFER_BYTES ?? 1024 * 1024,
  replayMemoryBytes: env.TERMINAL_REPLAY_MEMORY_BYTES ?? 64 * 1024 * 1024,
  sendQueueMemoryBytes: env.TERMINAL_SEND_QUEUE_MEMORY_BYTES ?? 32 * 1024 * 1024,
  clientWindowBytes: env.TERMINAL_CLIENT_WINDOW_BYTES ?? 32 * 1024,
  maxClientsPerEnvironment: env.TERMINAL_MAX_CLIENTS_PER_ENVIRONMENT ?? 10,
  maxConnectionsPerUser: env.TERMINAL_MAX_CONNECTIONS_PER_USER ?? 20,
}));
