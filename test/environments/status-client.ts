import { WebSocket } from 'ws';
import type { EnvironmentBody } from '../support/environments.js';

export type StatusMessage =
  | { type: 'snapshot'; environments: EnvironmentBody[] }
  | { type: 'environment'; event: 'created' | 'updated'; environment: EnvironmentBody }
  | { type: 'deleted'; id: string }
  | { type: 'error'; message: string; code: number };

/**
 * A client of the status socket (`/api/v1/ws/environments`) that keeps every message it received,
 * and waits for one that matches, or for the close, without sleeping.
 */
export class StatusClient {
  readonly messages: StatusMessage[] = [];
  readonly closed: Promise<number>;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString()) as StatusMessage);
      for (const waiter of [...this.waiters]) waiter();
    });
    socket.on('error', () => undefined);
  }

  /** Opens the socket on `baseUrl` (http://…) with the token in the query (or none). */
  static open(baseUrl: string, token?: string): StatusClient {
    const query = token === undefined ? '' : `?token=${encodeURIComponent(token)}`;
    return new StatusClient(new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v1/ws/environments${query}`));
  }

  /** Resolves with the first message (from the start) that matches, or rejects after `timeoutMs`. */
  waitFor(predicate: (message: StatusMessage) => boolean, what: string, timeoutMs = 30_000): Promise<StatusMessage> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.messages.find(predicate);
        if (!found) return false;
        this.waiters.delete(onMessage);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const onMessage = (): void => void check();
      const timer = setTimeout(() => {
        this.waiters.delete(onMessage);
        reject(new Error(`status socket: no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map(summary))}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(onMessage);
    });
  }

  /** The first snapshot. */
  async snapshot(): Promise<EnvironmentBody[]> {
    const message = await this.waitFor((m) => m.type === 'snapshot', 'snapshot');
    return message.type === 'snapshot' ? message.environments : [];
  }

  /** Waits for an update of the environment in this phase (after the snapshot). */
  phase(id: string, phase: string, timeoutMs?: number): Promise<StatusMessage> {
    return this.waitFor(
      (m) => m.type === 'environment' && m.environment.id === id && m.environment.phase === phase,
      `${id} ${phase}`,
      timeoutMs,
    );
  }

  /** The ids of every environment this socket heard of, in any message. */
  get environmentIds(): Set<string> {
    const ids = new Set<string>();
    for (const message of this.messages) {
      if (message.type === 'snapshot') for (const environment of message.environments) ids.add(environment.id);
      if (message.type === 'environment') ids.add(message.environment.id);
      if (message.type === 'deleted') ids.add(message.id);
    }
    return ids;
  }

  close(): void {
    this.socket.terminate();
  }
}

function summary(message: StatusMessage): string {
  switch (message.type) {
    case 'snapshot':
      return `snapshot(${message.environments.length})`;
    case 'environment':
      return `${message.event} ${message.environment.id} ${message.environment.phase}`;
    case 'deleted':
      return `deleted ${message.id}`;
    case 'error':
      return `error ${message.code}`;
  }
}
