/**
 * A real HTTP receiver on a loopback port that plays the SMS provider: the `webhook` JSON POST (checking
 * its HMAC signature) and Twilio's Messages API (checking Basic auth). Every message is kept for the test
 * to read; `mode` makes it fail like a provider that is down.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSms {
  provider: 'webhook' | 'twilio';
  to: string;
  text: string;
  /** The 6-digit code at the start of the text. */
  code: string;
  /** Whether the signature (webhook) or the credentials (twilio) were right. */
  authentic: boolean;
  headers: http.IncomingHttpHeaders;
  raw: string;
}

export type ReceiverMode = 'ok' | 'error' | 'hang';

export interface SmsReceiver {
  url: string;
  messages: ReceivedSms[];
  mode: ReceiverMode;
  /** Waits for the next message to `to` (after `since` messages). */
  next(to: string, opts?: { since?: number; timeoutMs?: number }): Promise<ReceivedSms>;
  stop(): Promise<void>;
}

export const TWILIO_SID = `AC${'0123456789abcdef'.repeat(2)}`;
export const TWILIO_TOKEN = 'twilio-test-auth-token-0123456789';
export const WEBHOOK_SECRET = 'webhook-test-secret-0123456789abcdef';

function checkSignature(header: string | undefined, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', WEBHOOK_SECRET).update(`${m[1]}.${body}`).digest();
  const got = Buffer.from(m[2]!, 'hex');
  return expected.length === got.length && timingSafeEqual(expected, got) && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
}

export async function startSmsReceiver(): Promise<SmsReceiver> {
  const messages: ReceivedSms[] = [];
  const receiver: SmsReceiver = {
    url: '',
    messages,
    mode: 'ok',
    async next(to, { since = 0, timeoutMs = 5000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.slice(since).find((m) => m.to === to);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no text message to ${to} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (receiver.mode === 'hang') return; // never answers: the sender's timeout must fire
      if (receiver.mode === 'error') {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"unavailable"}');
        return;
      }
      const raw = Buffer.concat(chunks).toString('utf8');
      const twilio = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(req.url ?? '');
      let message: ReceivedSms;
      if (twilio) {
        const form = new URLSearchParams(raw);
        const auth = `Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`;
        const text = form.get('Body') ?? '';
        message = {
          provider: 'twilio', to: form.get('To') ?? '', text, code: /^(\d{6})/.exec(text)?.[1] ?? '',
          authentic: twilio[1] === TWILIO_SID && req.headers.authorization === auth, headers: req.headers, raw,
        };
      } else {
        const body = JSON.parse(raw) as { to: string; text: string };
        message = {
          provider: 'webhook', to: body.to, text: body.text, code: /^(\d{6})/.exec(body.text)?.[1] ?? '',
          authentic: checkSignature(req.headers['x-latchkey-signature'] as string | undefined, raw), headers: req.headers, raw,
        };
      }
      messages.push(message);
      if (!message.authentic) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(twilio ? 201 : 200, { 'content-type': 'application/json' }).end(twilio ? '{"sid":"SM123","status":"queued"}' : '{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** Configuration for a test server that sends its text messages to this receiver. */
export function smsConfig(receiver: SmsReceiver, provider: 'webhook' | 'twilio', extra: Record<string, unknown> = {}) {
  return provider === 'webhook'
    ? { provider, timeoutMs: 1000, webhook: { url: `${receiver.url}/sms`, secret: WEBHOOK_SECRET }, ...extra }
    : { provider, timeoutMs: 1000, twilio: { accountSid: TWILIO_SID, authToken: TWILIO_TOKEN, from: '+15005550006', baseUrl: receiver.url }, ...extra };
}
