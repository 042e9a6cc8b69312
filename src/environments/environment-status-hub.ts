import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { WebSocket } from 'ws';
import { DomainEvents } from '../common/events/domain-events.js';
import type { EnvironmentResponseDto } from './dto/environment.dto.js';
import { EnvironmentResponses, Viewer } from './environment-responses.js';
import { EnvironmentsRepository } from './environments.repository.js';

/** The messages of the status socket (`/api/v1/ws/environments`), as sent; docs/status-websocket.md. */
export type StatusMessage =
  | { type: 'snapshot'; environments: EnvironmentResponseDto[] }
  | { type: 'environment'; event: 'created' | 'updated'; environment: EnvironmentResponseDto }
  | { type: 'deleted'; id: string };

/** A socket whose client reads slower than this much queued output is closed (1013, try again later). */
export const STATUS_SOCKET_BUFFER_LIMIT = 1024 * 1024;

/** How one user's sockets are kept: an ordered queue of work, the sockets, and those past their snapshot. */
interface UserChannel {
  /** Each socket with the sign-in session it was opened with (its preview grants are that session's). */
  sockets: Map<WebSocket, Viewer>;
  /** Sent their snapshot: the events after it go to them. */
  ready: WeakSet<WebSocket>;
  /** Each step (a snapshot, an event) runs after the previous one: a client never sees an older state after a newer one. */
  queue: Promise<void>;
}

/**
 * The status sockets this process holds, by user, and what they are sent. Every step of a user's
 * channel reads the environment's record again from the database, after the change that caused it
 * was written there: a socket sent its snapshot, then every event that came after, sees every
 * change, whichever replica made it, without the events having to carry the state themselves.
 *
 * - `environment.created`, `.phase_changed` and `.changed`, heard from any replica (`everyReplica`),
 *   send the owner's sockets on this process the environment as it now is (`created`/`updated`),
 *   and `deleted` once it is `terminated`;
 * - after a gap in the events of other replicas (`onResync`) every socket gets a fresh snapshot.
 *
 * A handler only queues its step, so the replica that emitted the event never waits for sockets.
 */
@Injectable()
export class EnvironmentStatusHub implements OnModuleInit {
  private readonly logger = new Logger('EnvironmentStatus');
  private readonly channels = new Map<string, UserChannel>();

  constructor(
    private readonly environments: EnvironmentsRepository,
    private readonly events: DomainEvents,
    private readonly responses: EnvironmentResponses,
  ) {}

  onModuleInit(): void {
    const every = { everyReplica: true };
    this.events.on('environment.created', ({ environmentId, userId }) => this.changed(userId, environmentId, 'created'), every);
    this.events.on('environment.changed', ({ environmentId, userId }) => this.changed(userId, environmentId, 'updated'), every);
    this.events.on('environment.phase_changed', ({ environmentId, userId }) => this.changed(userId, environmentId, 'updated'), every);
    this.events.onResync(() => {
      for (const [userId, channel] of this.channels) for (const socket of channel.sockets.keys()) this.snapshot(userId, socket);
    });
  }

  /** Status sockets open on this process. */
  get size(): number {
    let size = 0;
    for (const channel of this.channels.values()) size += channel.sockets.size;
    return size;
  }

  /** Sends the user's environments to the socket, then every change after them, until it closes. */
  add(viewer: Viewer, socket: WebSocket): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    const { userId } = viewer;
    const channel = this.channel(userId);
    channel.sockets.set(socket, viewer);
    socket.once('close', () => {
      channel.sockets.delete(socket);
      // Steps still queued on it find no socket; a later socket of the user starts a new channel.
      if (channel.sockets.size === 0 && this.channels.get(userId) === channel) this.channels.delete(userId);
    });
    this.snapshot(userId, socket);
  }

  private snapshot(userId: string, socket: WebSocket): void {
    const channel = this.channel(userId);
    this.enqueue(channel, async () => {
      const viewer = channel.sockets.get(socket);
      if (!viewer) return;
      const environments = await this.responses.many(viewer, await this.environments.listForUser(userId));
      if (socket.readyState !== WebSocket.OPEN) return;
      this.send(socket, { type: 'snapshot', environments });
      channel.ready.add(socket);
    });
  }

  private changed(userId: string, environmentId: string, event: 'created' | 'updated'): void {
    const channel = this.channels.get(userId);
    if (!channel) return;
    this.enqueue(channel, async () => {
      if (channel.sockets.size === 0) return;
      const environment = await this.environments.findOwned(environmentId, userId);
      for (const [socket, viewer] of channel.sockets) {
        if (!channel.ready.has(socket)) continue;
        if (environment) this.send(socket, { type: 'environment', event, environment: await this.responses.one(viewer, environment) });
        if (!environment || environment.phase === 'terminated') this.send(socket, { type: 'deleted', id: environmentId });
      }
    });
  }

  private enqueue(channel: UserChannel, step: () => Promise<void>): void {
    channel.queue = channel.queue.then(step).catch((error: unknown) => {
      this.logger.warn(`Could not send a status update: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private channel(userId: string): UserChannel {
    let channel = this.channels.get(userId);
    if (!channel) {
      channel = { sockets: new Map(), ready: new WeakSet(), queue: Promise.resolve() };
      this.channels.set(userId, channel);
    }
    return channel;
  }

  private send(socket: WebSocket, message: StatusMessage): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > STATUS_SOCKET_BUFFER_LIMIT) {
      socket.close(1013, 'too slow to read status updates; reconnect');
      return;
    }
    socket.send(JSON.stringify(message));
  }
}
