/**
 * A TCP proxy between Latchkey and PostgreSQL that the test controls, to take the database away without
 * touching the server (or any other database on it); it speaks no protocol of its own, so the mail fault
 * test puts it in front of its SMTP server too:
 * - `forward`: bytes flow both ways, as with no proxy;
 * - `refuse`: every connection is reset (RST) and new ones are reset as soon as they arrive, as when the
 *   database host is down and its kernel answers;
 * - `blackhole`: packets go nowhere, as with a pulled cable or a firewall that drops: new connections are
 *   accepted but never reach PostgreSQL, and nothing passes on the existing ones, so only the client's own
 *   timeouts end its waits. What a side sent meanwhile is held, as TCP retransmits it, and delivered when
 *   the proxy forwards again; a side that reset its connection meanwhile loses what it had sent (its kernel
 *   forgot it), and the other side learns of the reset then. Closes are held too: a side that closes its
 *   end (FIN) gets no answer, so a client that waits for the close to finish waits as over a dead network
 *   (both sockets are half-open, `allowHalfOpen`, so Node does not answer a FIN by itself).
 */
import net from 'node:net';

export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

export interface PgProxy {
  /** The proxy's port on 127.0.0.1. */
  port: number;
  /** `target` with the proxy's host and port. */
  url: string;
  readonly mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  /** Connections accepted since the start, and the ones open now. */
  stats(): { accepted: number; open: number };
  close(): Promise<void>;
}

/** One client connection and its way to PostgreSQL. */
interface Pair {
  client: net.Socket;
  server: net.Socket | undefined;
  /** Held while black-holed: bytes for PostgreSQL, bytes for the client. */
  toServer: Buffer[];
  toClient: Buffer[];
  clientGone: 'end' | 'reset' | undefined;
  serverGone: 'end' | 'reset' | undefined;
}

export async function startPgProxy(target: string): Promise<PgProxy> {
  const upstream = new URL(target);
  const upstreamPort = Number(upstream.port || 5432);
  const upstreamHost = upstream.hostname || '127.0.0.1';
  let mode: ProxyMode = 'forward';
  let accepted = 0;
  const pairs = new Set<Pair>();

  const reset = (socket: net.Socket | undefined) => {
    if (!socket || socket.destroyed) return;
    // A socket still connecting, or whose end (FIN) is on its way, is destroyed: Node's resetAndDestroy then
    // never releases its handle, and the process would not exit.
    if (socket.connecting || socket.writableEnded) socket.destroy();
    else socket.resetAndDestroy();
  };
  const drop = (pair: Pair) => {
    reset(pair.client);
    reset(pair.server);
    pairs.delete(pair);
  };

  /** Delivers what is held and what ended, once the proxy forwards. */
  const flush = (pair: Pair) => {
    if (pair.clientGone === 'reset' || pair.serverGone === 'reset') return drop(pair);
    if (!pair.server) pair.server = connectUpstream(pair);
    for (const chunk of pair.toServer.splice(0)) pair.server.write(chunk);
    for (const chunk of pair.toClient.splice(0)) if (!pair.client.destroyed) pair.client.write(chunk);
    if (pair.clientGone === 'end') pair.server.end();
    if (pair.serverGone === 'end') pair.client.end();
  };

  const connectUpstream = (pair: Pair): net.Socket => {
    const server = net.connect({ port: upstreamPort, host: upstreamHost, allowHalfOpen: true });
    server.on('data', (chunk: Buffer) => {
      if (mode === 'forward') pair.client.write(chunk);
      else if (mode === 'blackhole') pair.toClient.push(chunk);
    });
    server.on('end', () => {
      if (mode === 'blackhole') pair.serverGone = 'end';
      else pair.client.end();
    });
    server.on('error', () => {
      if (mode === 'blackhole') pair.serverGone = 'reset';
      else drop(pair);
    });
    server.on('close', () => {
      if (mode !== 'blackhole' && pair.client.destroyed) pairs.delete(pair);
    });
    return server;
  };

  const proxy = net.createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    if (mode === 'refuse') return void client.resetAndDestroy();
    const pair: Pair = { client, server: undefined, toServer: [], toClient: [], clientGone: undefined, serverGone: undefined };
    pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      if (mode === 'forward' && pair.server) pair.server.write(chunk);
      else pair.toServer.push(chunk);
    });
    client.on('end', () => {
      if (mode === 'blackhole') pair.clientGone = 'end';
      else pair.server?.end();
    });
    client.on('error', () => {
      // A reset: what the client had sent and PostgreSQL had not received is gone with it.
      pair.toServer.length = 0;
      if (mode === 'blackhole') pair.clientGone = 'reset';
      else drop(pair);
    });
    client.on('close', () => {
      if (mode !== 'blackhole') {
        if (pair.server && !pair.server.destroyed) pair.server.end();
        pairs.delete(pair);
      }
    });
    if (mode === 'forward') flush(pair);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
  const { port } = proxy.address() as net.AddressInfo;
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(port);

  return {
    port,
    url: url.toString(),
    get mode() {
      return mode;
    },
    setMode(next) {
      const before = mode;
      mode = next;
      if (next === 'refuse') for (const pair of [...pairs]) drop(pair);
      if (next === 'forward' && before === 'blackhole') for (const pair of [...pairs]) flush(pair);
    },
    stats: () => ({ accepted, open: pairs.size }),
    close() {
      for (const pair of [...pairs]) drop(pair);
      return new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
