import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { WebSocket } from 'ws';
import { Principal } from '../common/http/principal.js';
import { DomainEvents } from '../common/events/domain-events.js';
import { WsCloseCode } from '../common/websocket/close-codes.js';
import { rejectSocket } from '../common/websocket/ws-connection.js';
import { terminalConfig } from '../config/namespaces/terminal.config.js';
import { Environment, statusOf } from '../environments/environment.js';
import { EnvironmentsService } from '../environments/environments.service.js';
import { RuntimeProvider } from '../runtime/runtime.provider.js';
import { ClusterTerminals } from './cluster/cluster-terminals.js';
import { ReplayBudget, SendQueueBudget } from './memory-budget.js';
import { parseClientMessage } from './protocol.js';
import { TerminalMetrics } from './terminal-metrics.js';
import { newClientExtras } from './terminal-clients.js';
import { TerminalClient, TerminalSession } from './terminal-session.js';

/** A terminal client the gateway admitted: who, to which environment, and its query parameters. */
export interface ConnectRequest {
  principal: Principal;
  environment: Environment;
  resume: number | null;
  cols: number | null;
  rows: number | null;
  /** The `client_id` query parameter (already validated), or null. */
  clientId: string | null;
}

/**
 * The sessions of this process, one per environment, and the per-environment and per-user limits.
 * Sessions outlive their clients by the grace period; tmux sessions outlive everything here.
 */
@Injectable()
export class TerminalHub implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('TerminalHub');
  private readonly sessions = new Map<string, TerminalSession>();
  private readonly perUser = new Map<string, number>();
  private nextClientId = 1;
  /** Every session's queued output and replay data together stay under these (memory-budget.ts). */
  private readonly memory: { sendQueue: SendQueueBudget; replay: ReplayBudget };

  constructor(
    @Inject(terminalConfig.KEY) private readonly config: ConfigType<typeof terminalConfig>,
    private readonly runtime: RuntimeProvider,
    private readonly environments: EnvironmentsService,
    private readonly events: DomainEvents,
    private readonly metrics: TerminalMetrics,
    private readonly cluster: ClusterTerminals,
  ) {
    this.memory = { sendQueue: new SendQueueBudget(config.sendQueueMemoryBytes), replay: new ReplayBudget(config.replayMemoryBytes) };
  }

  onModuleInit(): void {
    // Both concern this process's own clients: they run wherever the event was emitted (every replica).
    this.events.on(
      'environment.phase_changed',
      ({ environmentId, phase, status, statusMessage }) => {
        this.sessions.get(environmentId)?.announce(status, phase, statusMessage);
      },
      { everyReplica: true },
    );
    this.events.on(
      'auth.sessions_revoked',
      ({ userId, sessionId, exceptSessionId }) => this.closeRevoked(userId, sessionId, exceptSessionId),
      { everyReplica: true },
    );
  }

  /** Terminals opened with a revoked sign-in session end at once (4001). */
  private closeRevoked(userId: string, sessionId: string | undefined, exceptSessionId: string | undefined): void {
    for (const session of this.sessions.values()) {
      for (const client of [...session.clients]) {
        if (client.userId !== userId) continue;
        if (sessionId !== undefined && client.sessionId !== sessionId) continue;
        if (exceptSessionId !== undefined && client.sessionId === exceptSessionId) continue;
        this.metrics.rejections.inc({ reason: 'unauthorized' });
        rejectSocket(client.ws, WsCloseCode.Unauthorized, 'Your session has ended; sign in again');
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    for (const session of [...this.sessions.values()]) session.close();
    // Several replicas: the leases are given up before Redis is disconnected, for a quick hand-over.
    await this.cluster.settle();
  }

  /** Sessions with an upstream in this process (for tests and metrics). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  session(environmentId: string): TerminalSession | undefined {
    return this.sessions.get(environmentId);
  }

  /**
   * Takes a terminal socket from the moment it opens. `admission` is the gateway's check of it
   * (sign-in, ownership, phase), null when that rejected (and closed) the socket. The frames the
   * client sends meanwhile, such as a first `resume` or the mobile app's first `input`, are held
   * here, and only here, and handled in order once the client is attached.
   */
  async connect(ws: WebSocket, admission: Promise<ConnectRequest | null>): Promise<void> {
    const early = holdFrames(ws);
    const request = await admission;
    // Rejected, or a client that left while it was being checked: it takes no connection slot.
    if (!request || ws.readyState !== WebSocket.OPEN) return;
    const { principal, environment } = request;
    const existing = this.sessions.get(environment.id);
    const refused = await this.admit(environment.id, principal.user.id, existing);
    if (refused === 'environment') {
      this.metrics.rejections.inc({ reason: 'too_many_clients' });
      return rejectSocket(
        ws,
        WsCloseCode.TooManyConnections,
        `This environment already has ${this.config.maxClientsPerEnvironment} terminal connections`,
      );
    }
    if (refused === 'user') {
      this.metrics.rejections.inc({ reason: 'too_many_connections' });
      return rejectSocket(
        ws,
        WsCloseCode.TooManyConnections,
        `You already have ${this.config.maxConnectionsPerUser} terminal connections open`,
      );
    }

    const client: TerminalClient = {
      id: this.nextClientId++,
      ws,
      userId: principal.user.id,
      sessionId: principal.sessionId,
      cols: request.cols,
      rows: request.rows,
      mode: 'connecting',
      queue: [],
      violations: 0,
      inputTokens: 1024 * 1024,
      inputRefilledAt: Date.now(),
      firstMessageTimer: null,
      extras: newClientExtras(request.clientId, `${this.cluster.replica}:${this.nextClientId - 1}`),
    };
    // Registered before any await: a socket that closes while we prepare still gives its slot back.
    let joined: TerminalSession | null = null;
    let closed = false;
    const release = (): void => {
      closed = true;
      joined?.detach(client);
      this.release(environment.id, principal.user.id);
    };
    if (ws.readyState !== WebSocket.OPEN) return release();
    ws.once('close', release);
    let session = this.sessions.get(environment.id);
    if (!session || session.isClosed) {
      const spec = await this.environments.specFor(environment);
      session = this.sessions.get(environment.id);
      if (!session || session.isClosed) {
        let created: TerminalSession | null = null;
        session = created = new TerminalSession(spec, {
          runtime: this.runtime,
          // Several replicas: one upstream per environment across them (docs/terminal.md#several-replicas).
          attach: this.cluster.enabled
            ? (attachSpec, size) => this.cluster.open(attachSpec, size, () => (created?.clients.size ?? 0) > 0)
            : undefined,
          metrics: this.metrics,
          replayBufferBytes: this.config.replayBufferBytes,
          memory: this.memory,
          graceMs: this.config.graceMs,
          windowBytes: this.config.clientWindowBytes,
          onInput: (id) => void this.environments.touch(id).catch(() => undefined),
          onClosed: (done) => {
            if (this.sessions.get(done.spec.id) === done) this.sessions.delete(done.spec.id);
          },
          environmentRunning: (id) => this.environments.isRunning(id),
        });
        this.sessions.set(environment.id, session);
      }
    }
    if (closed) {
      session.releaseIfIdle();
      return;
    }
    joined = session;
    const target = session;
    const receive = (data: Buffer, isBinary: boolean): void => {
      const parsed = parseClientMessage(data, isBinary);
      if (parsed.ok) target.handle(client, parsed.message);
      else target.violation(client, parsed.error);
    };
    early.deliverTo(receive);
    const welcome = {
      type: 'welcome' as const,
      message: `Connected to ${environment.name}`,
      environment: { id: environment.id, name: environment.name, template: environment.templateName, status: statusOf(environment.phase) },
    };
    try {
      await target.attach(client, welcome, request.resume);
    } catch (error) {
      this.logger.error(`Attaching a client to ${environment.id} failed: ${error instanceof Error ? error.message : String(error)}`);
      rejectSocket(ws, WsCloseCode.UpstreamError, 'The terminal could not be attached; try again');
    }
  }

  /**
   * Takes a connection slot (per environment and per user), or says which limit refuses it: in
   * this process's memory, or with Redis over every replica (ClusterTerminals).
   */
  private async admit(
    environmentId: string,
    userId: string,
    existing: TerminalSession | undefined,
  ): Promise<'environment' | 'user' | null> {
    if (this.cluster.enabled) {
      const verdict = await this.cluster.admit(environmentId, userId);
      return verdict === 'ok' ? null : verdict;
    }
    if ((existing?.clients.size ?? 0) >= this.config.maxClientsPerEnvironment) return 'environment';
    const userCount = this.perUser.get(userId) ?? 0;
    if (userCount >= this.config.maxConnectionsPerUser) return 'user';
    this.perUser.set(userId, userCount + 1);
    return null;
  }

  private release(environmentId: string, userId: string): void {
    if (this.cluster.enabled) return this.cluster.release(environmentId, userId);
    const count = (this.perUser.get(userId) ?? 1) - 1;
    if (count > 0) this.perUser.set(userId, count);
    else this.perUser.delete(userId);
  }
}

/**
 * Holds a socket's frames from now until `deliverTo`, which hands them over in order and then
 * every later one as it comes. Frames that arrive while the socket is closing (the hub rejected
 * it, or it is leaving) before that are dropped.
 */
function holdFrames(ws: WebSocket): { deliverTo(receive: (data: Buffer, isBinary: boolean) => void): void } {
  const held: [Buffer, boolean][] = [];
  let target: ((data: Buffer, isBinary: boolean) => void) | null = null;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (target) target(data, isBinary);
    else if (ws.readyState === WebSocket.OPEN) held.push([data, isBinary]);
  });
  return {
    deliverTo(receive) {
      for (const [data, isBinary] of held.splice(0)) receive(data, isBinary);
      target = receive;
    },
  };
}
