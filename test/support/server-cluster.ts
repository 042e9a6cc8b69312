import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killEnvironmentProcesses } from '../../src/runtime/local/process-tree.js';
import { EnvironmentPaths } from '../../src/runtime/local/environment-paths.js';
import { run } from '../../src/runtime/local/tmux.js';
import type { Tokens } from './accounts.js';
import { createTestDatabase, TestDatabase } from './database.js';
import type { EnvironmentBody } from './environments.js';
import { eventually } from './eventually.js';
import { testRedisPrefix } from './redis.js';
import { REPO_ROOT, ServerProcess } from './server-process.js';

/** A client address per request: the servers trust loopback proxies, so rate limits per address stay out of the way. */
const randomIp = (): string => `10.${[0, 0, 0].map(() => Math.floor(Math.random() * 250) + 1).join('.')}`;

/** The same secret for every process of a cluster, so a token issued by one is valid on all of them. */
export const CLUSTER_JWT_SECRET = 'cluster-test-jwt-secret-8d3f1a6c9e2b7d4f0a5c8e1b3d6f9a2c';

export interface ServerClusterOptions {
  /**
   * A Redis the processes share (REDIS_URL), under a key prefix of this cluster's own
   * (REDIS_KEY_PREFIX, in `redisKeyPrefix`). Without it each process keeps its state in memory.
   */
  redisUrl?: string;
}

/**
 * Several API server processes (the compiled dist/main.js) sharing one database and one DATA_DIR,
 * as replicas on one host would: the local runtime's tmux servers live under DATA_DIR and outlive
 * every API process; with `redisUrl`, they share a Redis too, as deploy/kubernetes/'s replicas do.
 * close() leaves nothing behind: no process, no tmux server, no directory, no database.
 */
export class ServerCluster {
  readonly servers: ServerProcess[] = [];

  private constructor(
    /** Short on purpose: tmux socket paths under it are limited to 107 bytes. */
    readonly dataDir: string,
    readonly database: TestDatabase,
    readonly redisUrl: string | null,
    readonly redisKeyPrefix: string | null,
  ) {}

  static create(prefix = 'cluster', options: ServerClusterOptions = {}): ServerCluster {
    const redisKeyPrefix = options.redisUrl ? testRedisPrefix(prefix) : null;
    return new ServerCluster(mkdtempSync('/tmp/dp-'), createTestDatabase(prefix), options.redisUrl ?? null, redisKeyPrefix);
  }

  get environmentsRoot(): string {
    return join(this.dataDir, 'environments');
  }

  environmentDir(id: string): string {
    return join(this.environmentsRoot, id);
  }

  /** The tmux socket of an environment's own tmux server. */
  tmuxSocket(id: string): string {
    return new EnvironmentPaths(this.environmentsRoot, id).socket;
  }

  /** True while the environment's tmux server holds its session `devpocket_<id>` (asked through the socket, never starting a server). */
  async hasTmuxSession(id: string): Promise<boolean> {
    const result = await run('tmux', ['-N', '-S', this.tmuxSocket(id), 'has-session', '-t', `=devpocket_${id}`], {
      PATH: process.env.PATH,
    });
    return result.code === 0;
  }

  /**
   * The tmux clients attached to the environment's session (one line each: pid and size), asked
   * through the socket the local runtime uses: the terminal's upstreams, whichever process runs them.
   */
  async tmuxClients(id: string): Promise<string[]> {
    const result = await run(
      'tmux',
      ['-N', '-S', this.tmuxSocket(id), 'list-clients', '-t', `=devpocket_${id}`, '-F', '#{client_pid} #{client_width}x#{client_height}'],
      { PATH: process.env.PATH },
    );
    if (result.code !== 0) throw new Error(`tmux list-clients: ${result.stderr}`);
    return result.stdout.split('\n').filter((line) => line.length > 0);
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      NODE_ENV: 'production',
      ALLOW_UNSANDBOXED_LOCAL_RUNTIME: 'true',
      MONGODB_URI: this.database.serverUri,
      MONGODB_DB_NAME: this.database.name,
      JWT_SECRET: CLUSTER_JWT_SECRET,
      DATA_DIR: this.dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      TRUSTED_PROXIES: 'loopback',
      // Not `warn`: ServerProcess.listening() learns the port chosen for PORT=0 from the info line "listening on …".
      LOG_LEVEL: 'info',
      ...(this.redisUrl && this.redisKeyPrefix ? { REDIS_URL: this.redisUrl, REDIS_KEY_PREFIX: this.redisKeyPrefix } : {}),
      ...extra,
    };
  }

  /** Runs the admin command line (dist/cli.js) on the cluster's database (and Redis); resolves with its stdout. */
  async cli(args: string[]): Promise<string> {
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !/^(MONGODB_|JWT_|NODE_ENV|PORT|DATA_DIR|LOG_LEVEL|REDIS_)/.test(key)),
    );
    const { stdout } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'dist', 'cli.js'), ...args], {
      cwd: REPO_ROOT,
      env: { ...base, ...this.env({ LOG_LEVEL: 'warn' }) },
    });
    return stdout;
  }

  /** Starts one more server process and waits until it listens. */
  async start(extra: Record<string, string> = {}): Promise<{ server: ServerProcess; api: ApiClient }> {
    const server = new ServerProcess(this.env(extra));
    this.servers.push(server);
    const baseUrl = await server.listening();
    return { server, api: new ApiClient(baseUrl) };
  }

  async close(): Promise<void> {
    // Whatever a failed test left running: servers first (they would restart nothing, but hold sockets).
    await Promise.all(
      this.servers.map(async (server) => {
        server.kill('SIGKILL');
        await server.exited;
      }),
    );
    if (existsSync(this.environmentsRoot)) {
      for (const id of readdirSync(this.environmentsRoot)) {
        if (!/^[0-9a-f]{24}$/.test(id)) continue;
        await run('tmux', ['-N', '-S', this.tmuxSocket(id), 'kill-server'], { PATH: process.env.PATH });
        await killEnvironmentProcesses(id);
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true, maxRetries: 3 });
    await this.database.drop();
  }
}

export interface ClusterAccount {
  username: string;
  email: string;
  password: string;
  tokens: Tokens;
}

/** The REST API of one server process, as a client would use it. */
export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async json<T>(method: string, path: string, options: { body?: unknown; token?: string } = {}): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { 'x-forwarded-for': randomIp() };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** Registers a fresh account (free plan) and returns its credentials and tokens. */
  async register(): Promise<ClusterAccount> {
    const suffix = randomBytes(4).toString('hex');
    const account = { username: `user_${suffix}`, email: `user.${suffix}@example.com`, password: `Passw0rd-${suffix}` };
    const res = await this.json<Tokens>('POST', '/api/v1/auth/register', { body: account });
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { ...account, tokens: res.body };
  }

  async get(account: ClusterAccount, id: string): Promise<EnvironmentBody> {
    const res = await this.json<EnvironmentBody>('GET', `/api/v1/environments/${id}`, { token: account.tokens.access_token });
    if (res.status !== 200) throw new Error(`GET environment ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  waitForPhase(account: ClusterAccount, id: string, phase: string, timeoutMs = 60_000): Promise<EnvironmentBody> {
    return eventually(
      async () => {
        const body = await this.get(account, id);
        if (body.phase !== phase)
          throw new Error(`environment ${id} is ${body.phase} (${body.status_message ?? ''}), waiting for ${phase}`);
        return body;
      },
      timeoutMs,
      200,
    );
  }

  /** Creates an environment from a template and waits until it runs. */
  async createRunning(account: ClusterAccount, body: Record<string, unknown> = {}): Promise<EnvironmentBody> {
    const res = await this.json<EnvironmentBody>('POST', '/api/v1/environments', {
      token: account.tokens.access_token,
      body: { name: 'Process Test', template: 'debian', ...body },
    });
    if (res.status !== 201) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
    return this.waitForPhase(account, res.body.id, 'running');
  }

  /** Deletes an environment and waits until it is terminated. */
  async deleteAndWait(account: ClusterAccount, id: string): Promise<EnvironmentBody> {
    const res = await this.json<EnvironmentBody>('DELETE', `/api/v1/environments/${id}`, { token: account.tokens.access_token });
    if (res.status >= 300) throw new Error(`delete: ${res.status} ${JSON.stringify(res.body)}`);
    return this.waitForPhase(account, id, 'terminated');
  }
}
