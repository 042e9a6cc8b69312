/**
 * A TCP forwarder in the test process: listens on one of this host's addresses and pipes each
 * connection to a target. The test cluster's API server and the tests' database listen on
 * 127.0.0.1 only (nothing of the development setup is exposed); a pod on the real node reaches the
 * host through its bridge's gateway address, so the in-cluster suite forwards from there
 * (test/kubernetes/in-cluster.e2e-spec.ts), for as long as the suite runs and no longer.
 */
import * as net from 'node:net';

export interface TcpForward {
  /** The address and port it listens on. */
  host: string;
  port: number;
  /** Stops listening and cuts every forwarded connection. */
  close(): Promise<void>;
}

export async function forwardTcp(listenHost: string, target: { host: string; port: number }): Promise<TcpForward> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.once('close', () => sockets.delete(socket));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('error', () => upstream.destroy());
    upstream.once('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    host: listenHost,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
