import { Duplex } from 'node:stream';
import { Logger } from '@nestjs/common';
import type { WebSocket } from 'ws';
import type { ExecSession, ExitStatus } from '../runtime.provider.js';
import { clampTerminal } from '../terminal-size.js';

/**
 * One process started through the Kubernetes exec API, over a WebSocket speaking the
 * `channel.k8s.io` protocols: every binary frame starts with its channel (0 stdin, 1 stdout,
 * 2 stderr, 3 status, 4 resize; 255 closes a channel in `v5.channel.k8s.io`).
 */

export const Channel = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, close: 255 } as const;

/** Output buffered in `stream` before the socket is paused (the API server then stops reading the process). */
export const EXEC_HIGH_WATER_MARK = 64 * 1024;
/**
 * WebSocket pings every 15 s keep idle terminals alive through proxies and load balancers that cut
 * silent connections, and find connections that died without a word (no FIN, no RST: a peer or a
 * middlebox gone, a network partition).
 */
export const EXEC_KEEPALIVE_MS = 15_000;
/**
 * After a ping, the API server must answer (a pong, or any frame) within 10 s, or the connection is
 * taken for dead and closed: a dead exec is noticed within 25 s (interval + deadline).
 */
export const EXEC_PONG_TIMEOUT_MS = 10_000;

/** The keep-alive of an exec connection: a ping every `intervalMs`, an answer expected within `pongTimeoutMs`. */
export interface ExecKeepalive {
  intervalMs: number;
  pongTimeoutMs: number;
}

export const DEFAULT_EXEC_KEEPALIVE: ExecKeepalive = { intervalMs: EXEC_KEEPALIVE_MS, pongTimeoutMs: EXEC_PONG_TIMEOUT_MS };
/** Go's wording of signals ("signal: killed") to their names. */
const SIGNAL_WORDS: Record<string, string> = { killed: 'SIGKILL', terminated: 'SIGTERM', hangup: 'SIGHUP', interrupt: 'SIGINT' };

interface StatusCause {
  reason?: string;
  message?: string;
}

interface ExecStatus {
  status?: string;
  reason?: string;
  message?: string;
  details?: { causes?: StatusCause[] };
}

/**
 * The exit status from the status channel. A kubelet reports a non-zero exit as reason
 * `NonZeroExitCode` with an `ExitCode` cause; kwok (and some runtimes) only put the code into the
 * message ("command terminated with non-zero exit code: … exit status 7"): both are understood.
 */
export function parseExitStatus(text: string): ExitStatus {
  let status: ExecStatus;
  try {
    status = JSON.parse(text) as ExecStatus;
  } catch {
    return { code: null, signal: null };
  }
  if (status.status === 'Success') return { code: 0, signal: null };
  const cause = status.details?.causes?.find((each) => each.reason === 'ExitCode');
  if (cause?.message && /^\d+$/.test(cause.message.trim())) return { code: Number(cause.message.trim()), signal: null };
  const message = status.message ?? '';
  const signal = /signal:? (\w+)/i.exec(message);
  if (signal?.[1]) {
    const word = signal[1].toLowerCase();
    return { code: null, signal: SIGNAL_WORDS[word] ?? (word.startsWith('sig') ? word.toUpperCase() : `SIG${word.toUpperCase()}`) };
  }
  const code = /exit (?:status|code)[: ]+(\d+)(?!.*exit (?:status|code))/i.exec(message);
  if (code?.[1]) return { code: Number(code[1]), signal: null };
  return { code: null, signal: null };
}

/** The message of a failed status that is not an exit code (the command could not start, etc.). */
export function statusProblem(text: string): string | null {
  try {
    const status = JSON.parse(text) as ExecStatus;
    if (status.status === 'Success') return null;
    if (status.reason === 'NonZeroExitCode') return null;
    return status.message ?? null;
  } catch {
    return null;
  }
}

function frame(channel: number, data: Buffer | string): Buffer {
  const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([Buffer.from([channel]), payload]);
}

/**
 * An ExecSession over an open exec WebSocket. Output is pushed into `stream`; when its buffer is
 * full the socket is paused (TCP backpressure reaches the API server, then the process). Writing
 * to `stream` sends stdin; ending it closes stdin (v5) so programs reading it see end-of-file.
 *
 * Keep-alive: a ping every `keepalive.intervalMs`; when neither a pong nor any other frame arrives
 * within `keepalive.pongTimeoutMs` after it, the connection is dead (it would otherwise hang the
 * session forever: a vanished peer sends no FIN and no RST). The socket is then cut and the session
 * ends as a dropped connection does (`SIGHUP`), with the reason logged. While the socket is paused
 * (backpressure) nothing is read, pongs included, so no deadline runs; it starts again with reading.
 *
 * Why not `Exec` of @kubernetes/client-node (2.0): its WebSocketHandler writes every output frame
 * into the caller's stream without looking at `write()`'s answer and never pauses the socket, and
 * sends stdin with `ws.send()` without looking at the socket's buffer. A terminal flooding output
 * (`yes`, a build log) would then fill this process's memory instead of slowing the program down.
 */
export class KubernetesExecSession implements ExecSession {
  readonly stream: Duplex;
  readonly exit: Promise<ExitStatus>;
  private resolveExit!: (status: ExitStatus) => void;
  private exitStatus: ExitStatus | null = null;
  /** Output has ended (end-of-stream pushed): frames after it are dropped. */
  private ended = false;
  private readonly keepalive: NodeJS.Timeout;
  /** Armed by a ping, disarmed by any sign of life; when it fires, the connection is dead. */
  private pongDeadline: NodeJS.Timeout | null = null;
  private readonly supportsClose: boolean;
  private readonly logger = new Logger('KubernetesRuntime');

  constructor(
    private readonly socket: WebSocket,
    private readonly tty: boolean,
    private readonly keepaliveSettings: ExecKeepalive = DEFAULT_EXEC_KEEPALIVE,
    /** Names the connection in the log (never the command: it may carry the user's variables). */
    private readonly label = 'an exec stream',
  ) {
    this.supportsClose = socket.protocol === 'v5.channel.k8s.io';
    this.exit = new Promise<ExitStatus>((resolve) => {
      this.resolveExit = resolve;
    });
    this.stream = new Duplex({
      highWaterMark: EXEC_HIGH_WATER_MARK,
      read: () => {
        if (this.socket.isPaused) this.socket.resume();
      },
      write: (chunk: Buffer, _encoding, callback) => {
        if (this.socket.readyState !== this.socket.OPEN) {
          callback();
          return;
        }
        this.socket.send(frame(Channel.stdin, chunk), (error) => callback(error ?? null));
      },
      final: (callback) => {
        if (this.socket.readyState === this.socket.OPEN && this.supportsClose) {
          this.socket.send(Buffer.from([Channel.close, Channel.stdin]), () => callback());
        } else {
          callback();
        }
      },
      destroy: (error, callback) => {
        this.close();
        callback(error);
      },
    });
    this.keepalive = setInterval(() => this.ping(), keepaliveSettings.intervalMs);
    this.keepalive.unref();
    const alive = (): void => this.disarmDeadline();
    socket.on('pong', alive);
    socket.on('ping', alive);
    socket.on('message', alive);
    socket.on('close', () => this.finish({ code: null, signal: 'SIGHUP' }));
    socket.on('error', () => this.finish({ code: null, signal: 'SIGHUP' }));
  }

  /** Feeds one frame from the socket (wired by the runtime to the handler that opened it). */
  receive(channel: number, data: Buffer): void {
    if (channel === Channel.stdout || channel === Channel.stderr) {
      if (data.length === 0 || this.ended) return;
      if (!this.stream.push(data)) {
        // Paused, nothing is read (pongs neither): liveness is judged again once reading resumes.
        this.socket.pause();
        this.disarmDeadline();
      }
      return;
    }
    if (channel === Channel.status) {
      const text = data.toString('utf8');
      this.exitStatus = parseExitStatus(text);
      const problem = statusProblem(text);
      if (problem && this.exitStatus.code === null && this.exitStatus.signal === null) this.exitStatus = { code: 126, signal: null };
      this.socket.close(1000);
      this.finish(this.exitStatus);
    }
  }

  resize(cols: number, rows: number): void {
    if (!this.tty || this.socket.readyState !== this.socket.OPEN) return;
    const size = clampTerminal(cols, rows);
    this.socket.send(frame(Channel.resize, JSON.stringify({ Width: size.cols, Height: size.rows })));
  }

  /** Closing the exec connection hangs up the TTY (or breaks the pipes): the process ends. */
  async kill(): Promise<void> {
    this.close();
    await this.exit;
  }

  private ping(): void {
    if (this.socket.readyState !== this.socket.OPEN || this.socket.isPaused) return;
    this.socket.ping();
    if (this.pongDeadline) return;
    this.pongDeadline = setTimeout(() => this.dead(), this.keepaliveSettings.pongTimeoutMs);
    this.pongDeadline.unref();
  }

  private disarmDeadline(): void {
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    this.pongDeadline = null;
  }

  /** No answer to a ping in time: the peer is gone without a word. Cut the socket; the session ends as dropped. */
  private dead(): void {
    this.pongDeadline = null;
    if (this.ended) return;
    this.logger.warn(
      `The connection of ${this.label} answered no ping within ${this.keepaliveSettings.pongTimeoutMs / 1000} s: it is dead, closing it`,
    );
    this.socket.terminate();
    this.finish({ code: null, signal: 'SIGHUP' });
  }

  private close(): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) this.socket.close(1000);
    this.finish(this.exitStatus ?? { code: null, signal: 'SIGHUP' });
  }

  private finish(status: ExitStatus): void {
    clearInterval(this.keepalive);
    this.disarmDeadline();
    if (!this.ended) {
      this.ended = true;
      if (!this.stream.destroyed) this.stream.push(null);
    }
    if (this.socket.isPaused) this.socket.resume();
    const first = this.exitStatus ?? status;
    this.exitStatus = first;
    this.resolveExit(first);
  }
}
