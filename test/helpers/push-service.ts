/**
 * A Web Push service on a loopback port, so a test can watch what Latchkey sends to a phone without the
 * network. It speaks RFC 8030 over HTTP (`POST /push/:id`), checks RFC 8292 VAPID, and delivers either to a
 * software subscription it made itself (whose keys it holds, so it decrypts RFC 8291 bodies and keeps the
 * plaintext) or to a real Firefox, over Mozilla's WebSocket push protocol on the same port (the protocol
 * of `dom.push.serverURL`, as in Firefox's `dom/push/PushServiceWebSocket.sys.mjs` and autopush).
 */
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, randomUUID, verify, type ECDH } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** The JSON a browser's `PushSubscription.toJSON()` gives, plus the id in its endpoint. */
export interface SoftwareSubscription {
  id: string;
  endpoint: string;
  expirationTime: null;
  keys: { p256dh: string; auth: string };
}

/** The claims of a request's VAPID JWT, and the key (`k`) it names. */
export interface VapidClaims {
  aud: unknown;
  exp: unknown;
  sub: unknown;
  k: string;
}

/** One `POST /push/:id`, whatever became of it. */
export interface ReceivedPush {
  /** The subscription id in the path. */
  id: string;
  status: number;
  headers: http.IncomingHttpHeaders;
  ttl?: number;
  urgency?: string;
  encoding?: string;
  /** The VAPID claims, whenever the JWT could be read (also for a refused request). */
  vapid?: VapidClaims;
  /** Why the request was refused (status 400 and up). */
  refused?: string;
  /** The decrypted body (UTF-8) of a push to a software subscription. */
  plaintext?: string;
  /** A push to a browser: the message's version, and the browser's ack code once it acked (100 delivered, 101 decryption error, 102 not delivered). */
  version?: string;
  ack?: number;
}

type Subscription = { applicationServerKey?: Buffer; gone: boolean } & (
  | { kind: 'software'; ecdh: ECDH; auth: Buffer }
  | { kind: 'browser'; uaid: string; channelID: string }
);

/** A notification waiting for its browser: sent when it connects, dropped after its TTL. */
interface Pending { uaid: string; expires: number; message: Record<string, unknown>; record: ReceivedPush }

const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);
/** RFC 8030 §7.2: a push service must accept 4096 bytes; we accept that and no more, like most. */
const MAX_BODY = 4096;
/** RFC 8292 §2: a JWT must not expire more than 24 hours ahead. */
const MAX_EXP_SECONDS = 24 * 60 * 60;

class Refusal extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

function refuse(status: number, message: string): never {
  throw new Refusal(status, message);
}

/** Refuses the push with `status` unless `ok`: the checks below read as the rules they enforce. */
function assertThat(ok: unknown, status: number, message: string): asserts ok {
  if (!ok) refuse(status, message);
}

const b64url = (b: Buffer): string => b.toString('base64url');
/** Firefox pads the key it registers with; compare keys as bytes. */
const fromB64url = (s: string): Buffer => Buffer.from(s.replace(/=+$/, ''), 'base64url');

/** A header sent once; Node gives an array only for a few standard ones. */
const one = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value.join(', ') : value);

function isP256Point(b: Buffer): boolean {
  return b.length === 65 && b[0] === 0x04;
}

export class PushService {
  readonly received: ReceivedPush[] = [];
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly sockets = new Map<string, WebSocket>();
  private pending: Pending[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly server: http.Server, private readonly wss: WebSocketServer) {}

  static async start(): Promise<PushService> {
    const server = http.createServer();
    const wss = new WebSocketServer({ server, path: '/' });
    const service = new PushService(server, wss);
    server.on('request', (req, res) => service.onRequest(req, res));
    wss.on('connection', (socket) => service.onSocket(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return service;
  }

  /** `http://127.0.0.1:PORT`: the `aud` every VAPID JWT must carry. */
  get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** What Firefox's `dom.push.serverURL` is set to. */
  get webSocketUrl(): string {
    return `${this.origin.replace(/^http/, 'ws')}/`;
  }

  endpoint(id: string): string {
    return `${this.origin}/push/${id}`;
  }

  /** A subscription whose keys this service holds, so it can read what is pushed to it. */
  subscribe(opts: { applicationServerKey?: string } = {}): SoftwareSubscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    const id = b64url(randomBytes(16));
    this.subscriptions.set(id, { kind: 'software', ecdh, auth, gone: false, applicationServerKey: this.serverKey(opts.applicationServerKey) });
    return { id, endpoint: this.endpoint(id), expirationTime: null, keys: { p256dh: b64url(ecdh.getPublicKey()), auth: b64url(auth) } };
  }

  /** From now on a push to `id` is answered 410 Gone, like an expired or revoked subscription. */
  markGone(id: string): void {
    const subscription = this.subscriptions.get(id);
    if (!subscription) throw new Error(`no subscription ${id}`);
    subscription.gone = true;
  }

  /** The first received push matching `predicate` (already there or still to come). */
  waitFor(predicate: (push: ReceivedPush) => boolean, timeoutMs = 5000): Promise<ReceivedPush> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.received.find(predicate);
        if (!found) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const seen = this.received.map((p) => `${p.status} ${p.id}${p.refused ? ` (${p.refused})` : ''}${p.ack ? ` ack ${p.ack}` : ''}`);
        reject(new Error(`no matching push within ${timeoutMs} ms; received: ${seen.length ? seen.join('; ') : 'nothing'}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  async stop(): Promise<void> {
    for (const socket of this.wss.clients) socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private changed(): void {
    for (const check of [...this.waiters]) check();
  }

  private serverKey(key: string | undefined): Buffer | undefined {
    if (key === undefined) return undefined;
    const bytes = fromB64url(key);
    if (!isP256Point(bytes)) throw new Error('applicationServerKey must be an uncompressed P-256 point (base64url)');
    return bytes;
  }

  // ---- RFC 8030: the application server's side ----

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const match = /^\/push\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      const record: ReceivedPush = { id: match[1]!, status: 0, headers: req.headers };
      try {
        if (size > MAX_BODY) refuse(413, `body of ${size} bytes`);
        const location = this.accept(record, req.headers, Buffer.concat(chunks));
        record.status = 201;
        res.writeHead(201, { location }).end();
      } catch (error) {
        // A bug here is answered 500 and recorded, so the test waiting on it says what happened.
        record.status = error instanceof Refusal ? error.status : 500;
        record.refused = error instanceof Error ? error.message : String(error);
        res.writeHead(record.status, { 'content-type': 'text/plain' }).end(record.refused);
      }
      this.received.push(record);
      this.changed();
    });
  }

  /** Checks one push and delivers it; returns its message's URL, or throws a Refusal. */
  private accept(record: ReceivedPush, headers: http.IncomingHttpHeaders, body: Buffer): string {
    const subscription = this.subscriptions.get(record.id);
    assertThat(subscription, 404, 'no such subscription');
    assertThat(!subscription.gone, 410, 'subscription gone');

    const ttl = one(headers.ttl);
    assertThat(ttl !== undefined && /^\d+$/.test(ttl), 400, 'TTL header missing or not a number');
    record.ttl = Number(ttl);
    record.urgency = one(headers.urgency);
    assertThat(record.urgency === undefined || URGENCIES.has(record.urgency), 400, `unknown Urgency ${record.urgency}`);
    record.encoding = headers['content-encoding'];
    assertThat(body.length === 0 || record.encoding === 'aes128gcm', 400, `Content-Encoding ${record.encoding ?? '(none)'} is not aes128gcm`);

    this.checkVapid(record, headers.authorization, subscription.applicationServerKey);

    const messageId = b64url(randomBytes(12));
    if (subscription.kind === 'software') {
      if (body.length > 0) record.plaintext = decrypt(body, subscription.ecdh, subscription.auth).toString('utf8');
    } else {
      record.version = messageId;
      this.deliver(subscription, record, body);
    }
    return `${this.origin}/m/${messageId}`;
  }

  // ---- RFC 8292: VAPID ----

  /**
   * Reads and checks `Authorization: vapid t=<JWT>, k=<key>` into `record.vapid`; throws 401 (a bad token)
   * or 403 (a good token from another key than the one the subscription was made for).
   */
  private checkVapid(record: ReceivedPush, authorization: string | undefined, subscriptionKey: Buffer | undefined): void {
    const auth = /^vapid\s+(.*)$/i.exec(authorization ?? '');
    assertThat(auth, 401, 'no VAPID Authorization header');
    const params = auth[1]!.split(',').map((p) => /^\s*([tk])=([\w.=-]+)\s*$/.exec(p));
    const token = params.find((p) => p?.[1] === 't')?.[2];
    const k = params.find((p) => p?.[1] === 'k')?.[2];
    assertThat(params.length === 2 && token && k, 401, 'VAPID Authorization is not "vapid t=<JWT>, k=<key>"');
    const key = fromB64url(k);
    assertThat(isP256Point(key), 401, 'VAPID k is not an uncompressed P-256 point');

    const parts = token.split('.');
    assertThat(parts.length === 3, 401, 'VAPID t is not a JWT');
    let header: { alg?: unknown };
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as { alg?: unknown };
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      refuse(401, 'VAPID JWT is not JSON');
    }
    const { aud, exp, sub } = claims;
    record.vapid = { aud, exp, sub, k };
    assertThat(header.alg === 'ES256', 401, `VAPID JWT alg ${String(header.alg)}, not ES256`);
    const publicKey = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: b64url(key.subarray(1, 33)), y: b64url(key.subarray(33)) },
      format: 'jwk',
    });
    const signature = Buffer.from(parts[2]!, 'base64url');
    assertThat(signature.length === 64 && verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature),
      401, 'VAPID signature does not verify with k');
    assertThat(aud === this.origin, 401, `VAPID aud ${String(aud)}, not ${this.origin}`);
    const now = Math.floor(Date.now() / 1000);
    assertThat(typeof exp === 'number' && exp > now, 401, 'VAPID exp missing or past');
    assertThat(exp - now <= MAX_EXP_SECONDS, 401, 'VAPID exp more than 24 h ahead');
    assertThat(typeof sub === 'string' && sub.length > 0, 401, 'VAPID sub missing');
    assertThat(!subscriptionKey || subscriptionKey.equals(key), 403, 'VAPID k is not the subscription\'s applicationServerKey');
  }

  // ---- Mozilla's WebSocket push protocol: the browser's side ----

  private onSocket(socket: WebSocket): void {
    let uaid: string | undefined;
    const send = (message: object): void => socket.send(JSON.stringify(message));
    socket.on('close', () => {
      if (uaid && this.sockets.get(uaid) === socket) this.sockets.delete(uaid);
    });
    socket.on('message', (data) => {
      const text = String(data);
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(text) as Record<string, unknown>;
      } catch {
        socket.close(1003, 'not JSON');
        return;
      }
      const type = message.messageType;
      if (text === '{}' || type === undefined || type === 'ping') {
        socket.send('{}'); // a ping; the pong is an empty object
        return;
      }
      if (type === 'hello') {
        uaid = typeof message.uaid === 'string' && /^[0-9a-f-]{1,128}$/i.test(message.uaid) ? message.uaid : randomUUID().replace(/-/g, '');
        this.sockets.get(uaid)?.close();
        this.sockets.set(uaid, socket);
        send({ messageType: 'hello', status: 200, uaid, use_webpush: true, broadcasts: {} });
        this.flush(uaid);
        return;
      }
      if (!uaid) {
        socket.close(1002, 'hello first');
        return;
      }
      const channelID = message.channelID;
      if (type === 'register' && typeof channelID === 'string') {
        let applicationServerKey: Buffer | undefined;
        if (typeof message.key === 'string') {
          applicationServerKey = fromB64url(message.key);
          if (!isP256Point(applicationServerKey)) {
            send({ messageType: 'register', channelID, status: 400 });
            return;
          }
        }
        const id = b64url(randomBytes(16));
        this.subscriptions.set(id, { kind: 'browser', uaid, channelID, applicationServerKey, gone: false });
        send({ messageType: 'register', uaid, channelID, status: 200, pushEndpoint: this.endpoint(id) });
      } else if (type === 'unregister' && typeof channelID === 'string') {
        for (const s of this.subscriptions.values()) if (s.kind === 'browser' && s.uaid === uaid && s.channelID === channelID) s.gone = true;
        send({ messageType: 'unregister', channelID, status: 200 });
      } else if (type === 'ack' && Array.isArray(message.updates)) {
        for (const update of message.updates as { version?: unknown; code?: unknown }[]) this.acked(update.version, update.code);
      } else if (type === 'nack') {
        this.acked(message.version, message.code);
      }
      // Anything else (`broadcast_subscribe`, …) is not needed here and ignored, as autopush ignores unknown types.
    });
  }

  private deliver(subscription: Subscription & { kind: 'browser' }, record: ReceivedPush, body: Buffer): void {
    const message: Record<string, unknown> = { messageType: 'notification', channelID: subscription.channelID, version: record.version };
    if (body.length > 0) Object.assign(message, { data: b64url(body), headers: { encoding: 'aes128gcm' } });
    // Kept until acked or its TTL is over: a TTL of 0 is now or never (RFC 8030 §5.2).
    this.pending.push({ uaid: subscription.uaid, expires: Date.now() + record.ttl! * 1000, message, record });
    this.sockets.get(subscription.uaid)?.send(JSON.stringify(message));
  }

  /** On a browser's hello: sends it what waits for it within TTL. A message stays pending until acked. */
  private flush(uaid: string): void {
    const now = Date.now();
    this.pending = this.pending.filter((p) => p.expires > now);
    const socket = this.sockets.get(uaid);
    for (const p of this.pending) if (p.uaid === uaid) socket?.send(JSON.stringify(p.message));
  }

  private acked(version: unknown, code: unknown): void {
    const index = this.pending.findIndex((p) => p.record.version === version);
    if (index < 0) return;
    const [p] = this.pending.splice(index, 1);
    p!.record.ack = typeof code === 'number' ? code : 100;
    this.changed();
  }
}

/**
 * RFC 8291 over RFC 8188: the body is one `aes128gcm` record whose header names the sender's ephemeral key
 * (keyid). The shared secret, the subscription's auth secret and both public keys make the key and nonce.
 */
export function decrypt(body: Buffer, ecdh: ECDH, auth: Buffer): Buffer {
  assertThat(body.length >= 21, 400, 'aes128gcm body too short');
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body[20]!;
  const senderKey = body.subarray(21, 21 + idLength);
  const ciphertext = body.subarray(21 + idLength);
  assertThat(isP256Point(senderKey), 400, 'aes128gcm keyid is not the sender\'s P-256 public key');
  assertThat(recordSize >= 18 && ciphertext.length <= recordSize && ciphertext.length >= 17, 400, 'aes128gcm body is not one record');

  let secret: Buffer;
  try {
    secret = ecdh.computeSecret(senderKey);
  } catch {
    refuse(400, 'aes128gcm keyid is not on the curve');
  }
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), senderKey]);
  const ikm = Buffer.from(hkdfSync('sha256', secret, auth, keyInfo, 32));
  const key = Buffer.from(hkdfSync('sha256', ikm, salt, 'Content-Encoding: aes128gcm\0', 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, 'Content-Encoding: nonce\0', 12)); // record 0: nonce XOR 0

  const decipher = createDecipheriv('aes-128-gcm', key, nonce);
  decipher.setAuthTag(ciphertext.subarray(-16));
  let padded: Buffer;
  try {
    padded = Buffer.concat([decipher.update(ciphertext.subarray(0, -16)), decipher.final()]);
  } catch {
    refuse(400, 'aes128gcm body does not decrypt with the subscription\'s keys');
  }
  // The plaintext ends with a delimiter, 2 for the last record, then any zero padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  assertThat(end >= 0 && padded[end] === 2, 400, 'aes128gcm record is not a single last record');
  return padded.subarray(0, end);
}
