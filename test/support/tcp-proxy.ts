import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Closes every open connection and, from now on, each new one as soon as it is accepted. */
  refuse(): void;
  /** Forwards new connections again. */
  accept(): void;
  /** Connections currently forwarded. */
  readonly open: number;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy on a port the OS picks, forwarding to `target` (e.g. the test Postgres),
 * that a test switches to refusing: a database that is down, without stopping the machine's
 * shared one.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let refusing = false;
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = createConnection(target);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const cutAll = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    refuse: () => {
      refusing = true;
      cutAll();
    },
    accept: () => {
      refusing = false;
    },
    get open() {
      return pairs.size;
    },
    close: async () => {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
