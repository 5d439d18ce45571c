/**
 * Draining on stop (SIGTERM): a request in flight on a keep-alive connection (a proxy's connection pool)
 * is answered with `Connection: close`, so the client takes its next request elsewhere and the instance
 * exits as soon as its requests are done, without waiting to cut connections.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('stopping with a keep-alive client', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ logLevel: 'warn' });
  });
  // The server's stop is idempotent: this ends the test's database whether or not the test stopped it.
  after(() => server.stop());

  it('answers the request in flight with Connection: close and stops without waiting for the connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const { port } = new URL(server.server.url);
    const warm = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/healthz', agent }, resolve).on('error', reject);
    });
    warm.resume();
    assert.equal(warm.headers.connection, 'keep-alive', 'a keep-alive connection to begin with');

    // A token request whose body is still coming when the stop begins: it is in flight on that connection.
    const body = 'grant_type=client_credentials&client_id=nobody';
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/token', method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } }, resolve);
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 300);
    });
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    const stopping = server.server.stop();
    const res = await response;
    res.resume();
    assert.equal(res.statusCode, 401, 'the request in flight is answered');
    assert.equal(res.headers.connection, 'close', 'and its connection is not kept for another request');
    await stopping;
    const ms = performance.now() - started;
    assert.ok(ms < 5000, `stopped in ${Math.round(ms)} ms, not after the 10 s that cuts open connections`);
    agent.destroy();
  });
});
