/** Waiting for the test cluster's processes and ports (./testbed.ts). */
import * as net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

import { logTail, type ManagedProcess } from './processes.js';

const STARTUP_TIMEOUT_MS = 90_000;

/** Polls `condition` until true; fails early, with the log's tail, if one of `processes` exits. */
export async function waitFor(
  what: string,
  condition: () => Promise<boolean>,
  processes: readonly ManagedProcess[],
  timeoutMs = STARTUP_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = processes.find((managed) => managed.exitCode !== undefined);
    if (dead !== undefined) {
      throw new Error(
        `${dead.name} exited (code ${String(dead.exitCode)}, signal ${String(dead.signal)}) while waiting for ${what}:\n${await logTail(dead.logFile)}`,
      );
    }
    if (await condition().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${String(timeoutMs / 1000)} s waiting for ${what}`);
    await delay(100);
  }
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}
