import { AppError } from '../../common/errors/app-error.js';
import { RuntimeError } from '../runtime.errors.js';
import type { EnvironmentSpec, ExecOptions, ExecSession, TerminalAttachment, TerminalSize } from '../runtime.provider.js';
import { DEFAULT_TERMINAL_SIZE } from '../terminal-size.js';
import { attachTmuxClient } from '../tmux-session.js';
import type { KubernetesApi } from './kubernetes-api.js';
import { KubernetesExecSession, type ExecKeepalive } from './kubernetes-exec.js';
import { CONTAINER_NAME, namesFor } from './manifests.js';
import type { EnvironmentObjects } from './objects.js';
import type { Located } from './placement.js';

/** argv as the environment's user: root containers (templates with system steps) drop to it with setpriv. */
function commandFor(spec: EnvironmentSpec, argv: string[], env: Record<string, string> | undefined): string[] {
  const { user } = spec.template;
  const rootContainer = !(spec.template.runAsNonRoot && user.uid !== 0);
  const drop = rootContainer && user.uid !== 0 ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--'] : [];
  const extra = env ? Object.entries(env) : [];
  for (const [name] of extra) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new AppError(RuntimeError.InvalidVariableName, `Invalid environment variable name ${JSON.stringify(name)}`);
  }
  const withEnv = extra.length > 0 ? ['env', ...extra.map(([name, value]) => `${name}=${value}`), ...argv] : argv;
  return [...drop, ...withEnv];
}

/**
 * Processes in an environment's pod, each a Kubernetes exec (`pods/exec` over a WebSocket, see
 * kubernetes-exec.ts): `exec` for the port, the terminal attachment (a tmux client through exec),
 * and `run` for the runtime's own scripts (status, logs, metrics). Keeps the sessions `exec`
 * opened, so the application's shutdown ends them.
 */
export class PodExec {
  private readonly sessions = new Set<ExecSession>();

  constructor(
    private readonly api: KubernetesApi,
    private readonly objects: EnvironmentObjects,
    private readonly keepalive: ExecKeepalive,
  ) {}

  async exec(spec: EnvironmentSpec, argv: string[], options: ExecOptions): Promise<ExecSession> {
    if (argv.length === 0) throw new AppError(RuntimeError.EmptyCommand, 'exec needs a command');
    const { at, view } = await this.objects.locateAndInspect(spec);
    if (!at || view.state !== 'running') {
      throw new AppError(RuntimeError.NotRunning, `Environment ${spec.id} is not running${view.message ? ` (${view.message})` : ''}`);
    }
    const command = commandFor(spec, argv, options.env);
    const session = await this.api.call(`exec in environment ${spec.id}`, () => this.open(at, command, options.tty));
    if (options.tty) session.resize(options.cols ?? DEFAULT_TERMINAL_SIZE.cols, options.rows ?? DEFAULT_TERMINAL_SIZE.rows);
    this.sessions.add(session);
    void session.exit.then(() => this.sessions.delete(session));
    return session;
  }

  /** A tmux client on the session the entrypoint started, through exec with a TTY. */
  attachTerminal(spec: EnvironmentSpec, size: TerminalSize): Promise<TerminalAttachment> {
    return attachTmuxClient(spec, size, (argv, options) => this.exec(spec, argv, options));
  }

  /** Opens an exec in the pod (frames arriving before the session exists are replayed into it). */
  async open(at: Located, command: string[], tty: boolean): Promise<KubernetesExecSession> {
    let session: KubernetesExecSession | null = null;
    const early: [number, Buffer][] = [];
    const pod = namesFor(at.id).pod;
    const socket = await this.api.openExec(at.namespace, pod, CONTAINER_NAME, command, tty, (channel, data) => {
      if (session) session.receive(channel, data);
      else early.push([channel, data]);
    });
    const created = new KubernetesExecSession(socket, tty, this.keepalive, `an exec in pod ${at.namespace}/${pod}`);
    session = created;
    for (const [channel, data] of early) created.receive(channel, data);
    return created;
  }

  /** Runs a command to its end (no TTY, no input) and collects its output; exec errors are retried like API calls. */
  async run(at: Located, command: string[]): Promise<{ text: string; code: number | null }> {
    const { id } = at;
    return this.api.call(`exec in environment ${id}`, async () => {
      const session = await this.open(at, command, false);
      session.stream.end();
      const chunks: Buffer[] = [];
      for await (const chunk of session.stream) chunks.push(chunk as Buffer);
      const exit = await session.exit;
      return { text: Buffer.concat(chunks).toString('utf8'), code: exit.code };
    });
  }

  /** Ends every session `exec` opened (application shutdown; environments keep running). */
  async killAll(): Promise<void> {
    await Promise.all([...this.sessions].map((session) => session.kill()));
    this.sessions.clear();
  }
}
