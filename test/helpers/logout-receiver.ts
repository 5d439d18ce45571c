/** An app's back-channel logout endpoint on a loopback port: records each logout token it receives. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LogoutReceiver {
  /** The endpoint to register as the client's `backchannelLogoutUri`. */
  url: string;
  /** Every `logout_token` posted so far, in order ('' for a post without one). */
  tokens: string[];
  close(): Promise<void>;
}

export async function startLogoutReceiver(): Promise<LogoutReceiver> {
  const tokens: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      tokens.push(new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('logout_token') ?? '');
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/logout`,
    tokens,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
