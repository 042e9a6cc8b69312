import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { EnvironmentsRepository } from '../../src/environments/environments.repository.js';
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

/** Runs `argv` in the environment through the runtime port, with `input` on its stdin; resolves with its output. */
async function run(app: EnvironmentsApp, environment: EnvironmentBody, argv: string[], input = ''): Promise<string> {
  const record = await app.app.get(EnvironmentsRepository).findById(environment.id);
  const session = await app.runtime.exec(await app.service.specFor(record!), argv, { tty: false });
  let output = '';
  session.stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
  session.stream.end(input);
  const exit = await session.exit;
  if (exit.code !== 0) throw new Error(`${argv.join(' ')} exited ${String(exit.code)}: ${output}`);
  return output;
}

/**
 * Starts test/previews/preview_server.py inside the environment on `port` (loopback: the local
 * runtime shares this host's network), serving preview-page.html as its index, the /headers echo
 * and the WebSocket echo. It runs until the environment stops.
 */
export async function startPreviewServer(app: EnvironmentsApp, environment: EnvironmentBody, port: number): Promise<void> {
  await run(
    app,
    environment,
    ['sh', '-c', 'mkdir -p preview-site && cat > preview_server.py'],
    readFileSync(join(HERE, 'preview_server.py'), 'utf8'),
  );
  await run(app, environment, ['sh', '-c', 'cat > preview-site/index.html'], readFileSync(join(HERE, 'preview-page.html'), 'utf8'));
  await run(app, environment, ['sh', '-c', `nohup python3 preview_server.py ${port} preview-site 127.0.0.1 > preview-server.log 2>&1 &`]);
  await listening(port);
}

/** Starts `python3 -m http.server` inside the environment on `port`, serving a page that says so. */
export async function startPlainHttpServer(app: EnvironmentsApp, environment: EnvironmentBody, port: number): Promise<void> {
  await run(
    app,
    environment,
    ['sh', '-c', 'mkdir -p plain-site && cat > plain-site/index.html'],
    '<h1>Served by python3 -m http.server</h1>\n',
  );
  await run(app, environment, [
    'sh',
    '-c',
    `cd plain-site && nohup python3 -m http.server ${port} --bind 127.0.0.1 > ../plain-server.log 2>&1 &`,
  ]);
  await listening(port);
}

/** Resolves once something accepts connections on the port (on loopback: the local runtime shares this host's network). */
function listening(port: number): Promise<void> {
  return eventually(
    () =>
      new Promise<void>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      }),
    15_000,
    100,
  );
}
