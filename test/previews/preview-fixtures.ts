import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { EnvironmentsRepository } from '../../src/environments/environments.repository.js';
import type { EnvironmentSpec } from '../../src/runtime/runtime.provider.js';
import type { EnvironmentBody, EnvironmentsApp } from '../support/environments.js';
import { eventually } from '../support/eventually.js';

const HERE = join('test', 'previews');

/** A TCP port free on this host now (the local runtime's environments share its network). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * The address the environment's servers listen on: loopback for the local runtime (it shares this
 * host's network), `0.0.0.0` in a pod (the proxy connects to the pod's IP).
 */
export type ListenAddress = '127.0.0.1' | '0.0.0.0';

/** Runs `argv` in the environment through the runtime port, with `input` on its stdin; resolves with its output. */
async function run(app: EnvironmentsApp, environment: EnvironmentBody, argv: string[], input = ''): Promise<string> {
  const session = await app.runtime.exec(await specOf(app, environment), argv, { tty: false });
  let output = '';
  session.stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
  session.stream.end(input);
  const exit = await session.exit;
  if (exit.code !== 0) throw new Error(`${argv.join(' ')} exited ${String(exit.code)}: ${output}`);
  return output;
}

/**
 * Writes `files` (paths relative to the working directory) into the environment, then starts
 * `command` in the background in `dir`, its output in `<dir>/server.log`; resolves once the port accepts connections.
 */
async function serve(
  app: EnvironmentsApp,
  environment: EnvironmentBody,
  port: number,
  server: { files: Record<string, string>; dir: string; command: string },
): Promise<void> {
  for (const [path, content] of Object.entries(server.files)) {
    await run(app, environment, ['sh', '-c', `mkdir -p "$(dirname ${path})" && cat > ${path}`], content);
  }
  await run(app, environment, ['sh', '-c', `mkdir -p ${server.dir} && cd ${server.dir} && nohup ${server.command} > server.log 2>&1 &`]);
  await listening(app, environment, port);
}

/**
 * Starts test/previews/preview_server.py inside the environment on `port`, serving
 * preview-page.html as its index, the /headers echo and the WebSocket echo. It runs until the
 * environment stops.
 */
export function startPreviewServer(
  app: EnvironmentsApp,
  environment: EnvironmentBody,
  port: number,
  bind: ListenAddress = '127.0.0.1',
): Promise<void> {
  return serve(app, environment, port, {
    files: {
      'preview_server.py': readFileSync(join(HERE, 'preview_server.py'), 'utf8'),
      'preview-site/index.html': readFileSync(join(HERE, 'preview-page.html'), 'utf8'),
    },
    dir: '.',
    command: `python3 preview_server.py ${port} preview-site ${bind}`,
  });
}

/** Starts `python3 -m http.server` inside the environment on `port`, serving a page that says so. */
export function startPlainHttpServer(
  app: EnvironmentsApp,
  environment: EnvironmentBody,
  port: number,
  bind: ListenAddress = '127.0.0.1',
): Promise<void> {
  return serve(app, environment, port, {
    files: { 'plain-site/index.html': '<h1>Served by python3 -m http.server</h1>\n' },
    dir: 'plain-site',
    command: `python3 -m http.server ${port} --bind ${bind}`,
  });
}

async function specOf(app: EnvironmentsApp, environment: EnvironmentBody): Promise<EnvironmentSpec> {
  const record = await app.app.get(EnvironmentsRepository).findById(environment.id);
  if (!record) throw new Error(`no environment ${environment.id}`);
  return app.service.specFor(record);
}

/** Resolves once something accepts connections on the port, where the preview proxy connects (the runtime's previewTarget). */
async function listening(app: EnvironmentsApp, environment: EnvironmentBody, port: number): Promise<void> {
  const spec = await specOf(app, environment);
  return eventually(
    async () => {
      const target = await app.runtime.previewTarget(spec, port);
      if (target === null) throw new Error(`no preview target for port ${port}`);
      return new Promise<void>((resolve, reject) => {
        const socket = connect(target.port, target.host, () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      });
    },
    15_000,
    100,
  );
}

/** Sends `text` over a WebSocket to `url` (preview_server.py's echo) and resolves with the first answer. */
export async function echoThrough(url: string, text: string): Promise<string> {
  const socket = new WebSocket(url);
  try {
    return await new Promise<string>((resolve, reject) => {
      socket.once('open', () => socket.send(text));
      socket.once('message', (data: Buffer) => resolve(data.toString()));
      socket.once('error', reject);
    });
  } finally {
    socket.close();
  }
}

/** The HTTP status that refuses a WebSocket upgrade to `url` (rejects if it is accepted). */
export function upgradeRefusal(url: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    socket.once('open', () => {
      socket.close();
      reject(new Error(`${url} was upgraded`));
    });
    socket.once('error', () => undefined);
  });
}
