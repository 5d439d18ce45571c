/** A real SMTP server on a loopback port that keeps every message it receives, for tests to read. */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  subject: string;
  /** The text/plain part, decoded. */
  text: string;
}

export interface MailBox {
  url: string;
  messages: ReceivedMail[];
  /** Waits for the next message to `to` (received after `since` messages), up to `timeoutMs`. */
  next(to: string, opts?: { since?: number; timeoutMs?: number }): Promise<ReceivedMail>;
  /** The first http(s) link in the message's text. */
  link(mail: ReceivedMail): string;
  stop(): Promise<void>;
}

function decodeQuotedPrintable(s: string): string {
  const bytes = s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** Enough MIME for nodemailer's output: finds the text/plain part and decodes it. */
export function parseMail(raw: string): { subject: string; text: string } {
  const headerEnd = raw.indexOf('\r\n\r\n');
  const headers = raw.slice(0, headerEnd).replace(/\r\n[ \t]+/g, ' ');
  let subject = /^Subject: (.*)$/im.exec(headers)?.[1] ?? '';
  // Adjacent encoded words are one text (RFC 2047 §6.2: the space between them is not part of it), and one
  // character may be split across two of them: join them before decoding.
  subject = subject.replace(/\?=\s+=\?utf-8\?Q\?/gi, '')
    .replace(/=\?utf-8\?Q\?([^?]*)\?=/gi, (_, q: string) => decodeQuotedPrintable(q.replace(/_/g, ' ')));
  const parts = raw.split(/\r\n--[^\r\n]+\r\n/);
  let text = '';
  for (const part of parts) {
    const end = part.indexOf('\r\n\r\n');
    const head = part.slice(0, end);
    if (!/content-type: text\/plain/i.test(head)) continue;
    let body = part.slice(end + 4).replace(/\r\n--[^\r\n]+--\s*$/, '');
    if (/content-transfer-encoding: quoted-printable/i.test(head)) body = decodeQuotedPrintable(body);
    else if (/content-transfer-encoding: base64/i.test(head)) body = Buffer.from(body, 'base64').toString('utf8');
    text = body;
    break;
  }
  return { subject, text };
}

/** `delayMs`: the server takes this long to accept each message, like a slow mail relay. */
export async function startMailBox({ delayMs = 0 }: { delayMs?: number } = {}): Promise<MailBox> {
  const messages: ReceivedMail[] = [];
  const waiters: (() => void)[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parseMail(raw),
        });
        waiters.splice(0).forEach((w) => w());
        if (delayMs) setTimeout(callback, delayMs);
        else callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    async next(to, { since = 0, timeoutMs = 5000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.slice(since).find((m) => m.to.includes(to));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no mail to ${to} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100).unref();
        });
      }
    },
    link(mail) {
      const m = /https?:\/\/[^\s<>"]+/.exec(mail.text);
      if (!m) throw new Error(`no link in mail: ${mail.text}`);
      return m[0];
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
