/**
 * Text messages: one of the only modules that talks to the outside world. Providers, chosen in config:
 *   log      development only: the message goes to the log (production refuses to start with it)
 *   webhook  a JSON POST {"to","text"} to any gateway, signed: X-Latchkey-Signature: t=<unix>,v1=<hex>
 *            where v1 = HMAC-SHA256(secret, "<t>.<raw body>")
 *   twilio   Twilio's Messages REST API over fetch (base URL configurable)
 * A provider that fails or times out throws SmsUnavailableError; the message text never reaches the log
 * (except with `log`, whose purpose that is).
 */
import { createHmac } from 'node:crypto';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { metrics } from '../metrics/registry.ts';

export class SmsUnavailableError extends Error {
  override name = 'SmsUnavailableError';
}

export interface SmsSender {
  readonly provider: Config['twoStep']['sms']['provider'];
  /** `to` is E.164. Throws SmsUnavailableError when the provider does not take the message. */
  send(to: string, text: string): Promise<void>;
}

/** The webhook's signature header value for a body sent at `time` (epoch seconds). */
export function webhookSignature(secret: string, time: number, body: string): string {
  return `t=${time},v1=${createHmac('sha256', secret).update(`${time}.${body}`).digest('hex')}`;
}

/** "+4915112345678" -> "+49••••••••78": enough to tell numbers apart in a log or on a page. */
export function maskPhone(e164: string): string {
  return e164.length <= 6 ? '••••' : `${e164.slice(0, 3)}${'•'.repeat(e164.length - 5)}${e164.slice(-2)}`;
}

export function createSmsSender(config: Config, log: Logger): SmsSender {
  const sms = config.twoStep.sms;
  const post = async (url: string, init: RequestInit, what: string, to: string) => {
    let res: Response;
    try {
      res = await fetch(url, { ...init, method: 'POST', redirect: 'error', signal: AbortSignal.timeout(sms.timeoutMs) });
    } catch (err) {
      log.warn({ provider: sms.provider, to: maskPhone(to), err: (err as Error).name }, `${what}: the SMS provider could not be reached`);
      metrics.sms(sms.provider, 'failed');
      throw new SmsUnavailableError('provider unreachable');
    }
    await res.body?.cancel().catch(() => {});
    if (!res.ok) {
      log.warn({ provider: sms.provider, to: maskPhone(to), status: res.status }, `${what}: the SMS provider refused the message`);
      metrics.sms(sms.provider, 'failed');
      throw new SmsUnavailableError(`provider answered ${res.status}`);
    }
    metrics.sms(sms.provider, 'sent');
  };

  switch (sms.provider) {
    case 'log':
      return {
        provider: 'log',
        async send(to, text) {
          log.info({ sms: { to, text } }, 'text message (development: sms.provider is "log", so it is written here)');
          metrics.sms('log', 'sent');
        },
      };
    case 'webhook': {
      const url = sms.webhook.url!;
      const secret = sms.webhook.secret!;
      return {
        provider: 'webhook',
        async send(to, text) {
          const body = JSON.stringify({ to, text });
          const time = Math.floor(Date.now() / 1000);
          await post(url, {
            headers: { 'content-type': 'application/json', 'x-latchkey-signature': webhookSignature(secret, time, body) },
            body,
          }, 'sms webhook', to);
        },
      };
    }
    case 'twilio': {
      const { accountSid, authToken, from, messagingServiceSid, baseUrl } = sms.twilio;
      const url = `${baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${accountSid}/Messages.json`;
      const auth = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;
      return {
        provider: 'twilio',
        async send(to, text) {
          const form = new URLSearchParams({ To: to, Body: text, ...(messagingServiceSid ? { MessagingServiceSid: messagingServiceSid } : { From: from! }) });
          await post(url, { headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() }, 'twilio', to);
        },
      };
    }
  }
}
