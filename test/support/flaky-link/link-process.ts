/**
 * The flaky link's process: `node --import tsx test/support/flaky-link/link-process.ts`, spawned by
 * FlakyLink.start() (./flaky-link.ts). It reads requests from stdin and writes replies to stdout,
 * one JSON line each (./protocol.ts), and exits when stdin ends: when its controller closes it, and
 * when the controller's process dies, so nothing is left behind.
 */
import { createInterface } from 'node:readline';

import type { Command, Reply, Request, Results } from './protocol.js';
import { FlakyLinkProxy } from './proxy.js';

let proxy: FlakyLinkProxy | null = null;

function running(): FlakyLinkProxy {
  if (!proxy) throw new Error('flaky link: not started');
  return proxy;
}

async function handle(command: Command): Promise<Results[Command['command']]> {
  switch (command.command) {
    case 'start':
      if (proxy) throw new Error('flaky link: already started');
      proxy = new FlakyLinkProxy(command.options);
      return proxy.start();
    case 'set':
      return running().set(command.settings);
    case 'blackhole':
      running().blackhole();
      return null;
    case 'heal':
      running().heal();
      return null;
    case 'reset':
      return running().reset();
    case 'roam':
      return running().roam();
    case 'stats':
      return running().stats();
    case 'locate':
      return running().locate(command.direction, command.text);
    case 'close':
      await proxy?.close();
      proxy = null;
      return null;
  }
}

function reply(message: Reply): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

let queue: Promise<void> = Promise.resolve();
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  const request = JSON.parse(line) as Request;
  queue = queue.then(async () => {
    try {
      reply({ id: request.id, result: await handle(request) });
    } catch (error) {
      reply({ id: request.id, error: error instanceof Error ? error.message : String(error) });
    }
  });
});
lines.once('close', () => {
  void queue.then(() => proxy?.close()).finally(() => process.exit(0));
});
