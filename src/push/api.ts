/**
 * The phone app's API at /app/api/ (docs/mobile-app-protocol.md): JSON only, `Cache-Control: no-store`,
 * no cookies (read or set: the app authenticates each request with its device key, device-auth.ts, so
 * there is no ambient authority to forge and no CSRF to guard against). Its words follow the request's
 * Accept-Language alone.
 *
 *   GET  /config                 (not signed) the VAPID public key and the product's name
 *   POST /pair                   signed by the new key: spends the account page's code, makes the device, sends its test prompt
 *   GET  /prompts, /prompts/:id  the live prompts this device may answer (never the number)
 *   POST /prompts/:id/approve    with the number the sign-in page shows
 *   POST /prompts/:id/deny       "cancel" or "not-me"
 *   POST /subscription           a new push subscription (or none), made with the current VAPID key
 *   POST /sign-out               the key is refused from now on
 *
 * The rules of prompts (limits, attempts, the first answer standing) are prompts.ts's; this file maps its
 * refusals to the protocol's statuses, records the security events and mails "This wasn't me".
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { LABEL_MAX } from '../factors/common.ts';
import { normalPairingCode } from '../factors/push.ts';
import { AppError } from '../errors.ts';
import { limitKey } from '../http/ip.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { Render } from '../http/render.ts';
import { DEFAULT_LANGUAGE, fromAcceptLanguage, runInLanguage } from '../i18n.ts';
import { inBackground } from '../mail-flows/mail-links.ts';
import { ThrottledError } from '../security/attempts.ts';
import type { Services } from '../services.ts';
import { DuplicateDeviceKeyError, type PushDevice, type PushSubscriptionJson } from '../store/push-devices.ts';
import type { User } from '../store/users.ts';
import { asciiDigits, PRINTABLE, tidy } from '../text.ts';
import { subscriptionOf } from '../delivery/push.ts';
import { ApiError } from './api-error.ts';
import { deviceAuth, type Signed } from './device-auth.ts';
import { mailPushNotMe } from './not-me.ts';
import { promptOrigin } from './origin.ts';
import { approve, deliver, deny, promptStep, promptsFor, PromptError, vapidKey, viewOf } from './prompts.ts';

export const API_PREFIX = '/app/api';
/** Pairing attempts per IP address in PAIR_WINDOW_SECONDS that did not pair (counted before the code is looked at). */
export const PAIR_ATTEMPTS_PER_IP = 10;
export const PAIR_WINDOW_SECONDS = 900;

export type AppApiDeps = Pick<Services, 'config' | 'store' | 'log' | 'push' | 'events' | 'mailer' | 'attempts' | 'geoip'> & { render: Render };

const PROMPT_ID = /^[A-Za-z0-9_-]{8,64}$/;

const pairInput = z.object({
  code: z.string().max(40),
  publicKey: z.unknown(),
  name: z.string().max(400),
  subscription: z.unknown().optional(),
});
const approveInput = z.object({ number: z.string().max(40).optional() });
const denyInput = z.object({ reason: z.enum(['cancel', 'not-me']) });
const subscriptionInput = z.object({ subscription: z.unknown() });

const PROMPT_STATUS: Record<PromptError['code'], number> = {
  number_required: 400, wrong_number: 400, prompt_ended: 410, unknown_prompt: 404, already_answered: 409, expired: 410,
};

const deviceView = (d: PushDevice) => ({ id: d.id, name: d.name, state: d.state });

/** The body through its schema, or 400 invalid_request naming the first bad field. */
function input<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw new ApiError('invalid_request', 400, { field: parsed.error.issues[0]?.path.join('.') || '_' });
}

/** The device's name as shown on the account page: tidy, printable, 1 to LABEL_MAX characters. */
function deviceName(raw: string): string {
  const name = tidy(raw);
  if (!name || name.length > LABEL_MAX || !PRINTABLE.test(name)) throw new ApiError('invalid_request', 400, { field: 'name' });
  return name;
}

/** A subscription the app sent: null (none: an "open the app" device), or one with an endpoint we may push to. */
function subscriptionFrom(deps: AppApiDeps, value: unknown): PushSubscriptionJson | undefined {
  if (value === null || value === undefined) return undefined;
  const subscription = subscriptionOf(value);
  if (!subscription || !deps.push.endpointAllowed(subscription.endpoint)) throw new ApiError('bad_subscription', 400);
  return subscription;
}

function signedOf(ctx: Context): Signed & { device: PushDevice; user: User } {
  return ctx.state.signed as Signed & { device: PushDevice; user: User };
}

export function appApi(deps: AppApiDeps) {
  const { store, config } = deps;
  const router = new Router({ prefix: API_PREFIX });
  const signed = deviceAuth(deps);

  /** Counts a pairing attempt per IP before anything is looked at; one that pairs is given back. */
  async function pairLimit(ctx: Context, next: Next) {
    const key = `push:pair:${limitKey(ctx.ip)}`;
    if (!(await store.counters.take(key, PAIR_ATTEMPTS_PER_IP, PAIR_WINDOW_SECONDS))) {
      const counter = (await store.counters.get([key])).get(key);
      const retryAfter = Math.max(1, Math.ceil(((counter?.expiresAt.getTime() ?? Date.now()) - Date.now()) / 1000));
      deps.log.warn({ ip: ctx.ip }, 'pairing attempts refused: too many from this address');
      throw new ApiError('too_many_attempts', 429, { retryAfter });
    }
    await next();
    await store.counters.release(key, 0);
  }

  router.get('/config', async (ctx) => {
    ctx.body = { vapidPublicKey: (await vapidKey(store)).publicKey, productName: config.productName };
  });

  router.post('/pair', pairLimit, deviceAuth(deps, { fromBody: true }), async (ctx) => {
    const { body, keyId, jwk } = ctx.state.signed as Signed;
    const sent = input(pairInput, body);
    const name = deviceName(sent.name);
    const subscription = subscriptionFrom(deps, sent.subscription);
    // Everything checked before the code is spent: a refused request does not cost the person their code.
    if (await store.pushDevices.findByKey(keyId)) throw new ApiError('already_paired', 409);
    const code = normalPairingCode(sent.code);
    const spent = code ? await store.codes.spend('push_pair', code) : undefined;
    const pairingId = spent?.data?.pairingId;
    const user = spent?.userId ? await store.users.findById(spent.userId) : undefined;
    if (!spent || typeof pairingId !== 'string' || !user || user.status !== 'active') throw new ApiError('unknown_code', 404);
    let device: PushDevice;
    try {
      device = await store.pushDevices.insert({
        userId: user.id, pairingId, keyId, publicKey: { ...jwk }, name, subscription,
        vapidKeyId: subscription ? (await vapidKey(store)).id : null,
      });
    } catch (err) {
      if (err instanceof DuplicateDeviceKeyError) throw new ApiError('already_paired', 409);
      throw err;
    }
    ctx.state.log?.info({ device: device.id, userId: user.id, push: !!subscription }, 'phone paired; test prompt follows');
    // The test prompt: the device counts once it approved it (factors/push.ts finish).
    const origin = promptOrigin(deps.geoip, requestMeta(ctx), { id: null, name: config.productName, logoUrl: null });
    const step = await promptStep(deps, user, { purpose: 'test', pairingId, origin });
    const row = await store.pending.put({ ...step, binding: `pair:${pairingId}`, userId: user.id });
    await deliver(deps, row);
    ctx.status = 201;
    ctx.body = { device: deviceView(device) };
  });

  /** Marks the device seen (a device idle for 30 days is live again once opened) and returns it as now. */
  async function seen(device: PushDevice): Promise<PushDevice> {
    await store.pushDevices.seen(device.id);
    return { ...device, lastSeenAt: new Date() };
  }

  router.get('/prompts', signed, async (ctx) => {
    const device = await seen(signedOf(ctx).device);
    const rows = await promptsFor(deps, device);
    ctx.body = { device: deviceView(device), vapidPublicKey: (await vapidKey(store)).publicKey, prompts: rows.map(viewOf) };
  });

  router.get('/prompts/:id', signed, async (ctx) => {
    const device = await seen(signedOf(ctx).device);
    const id = ctx.params.id ?? '';
    const [row] = PROMPT_ID.test(id) ? await promptsFor(deps, device, id) : [];
    if (!row) throw new ApiError('unknown_prompt', 404);
    ctx.body = viewOf(row);
  });

  router.post('/prompts/:id/approve', signed, async (ctx) => {
    const { device, user, body } = signedOf(ctx);
    const id = ctx.params.id ?? '';
    if (!PROMPT_ID.test(id)) throw new ApiError('unknown_prompt', 404);
    const { number } = input(approveInput, body);
    const row = await approve(deps, device, user, id, number === undefined ? undefined : asciiDigits(number), ctx.ip);
    if (row.data.purpose !== 'test') {
      await deps.events.record({
        type: 'push.approved', userId: user.id, ...requestMeta(ctx),
        details: { kind: 'push', purpose: row.data.purpose, client: clientOf(row.data), device: device.name },
      });
    }
    ctx.body = { status: 'approved' };
  });

  router.post('/prompts/:id/deny', signed, async (ctx) => {
    const { device, user, body } = signedOf(ctx);
    const id = ctx.params.id ?? '';
    if (!PROMPT_ID.test(id)) throw new ApiError('unknown_prompt', 404);
    const { reason } = input(denyInput, body);
    const row = await deny(deps, device, user, id, reason, ctx.ip);
    if (row.data.purpose !== 'test') {
      const notMe = reason === 'not-me';
      await deps.events.record({
        type: notMe ? 'push.denied_not_me' : 'push.denied', userId: user.id, ...requestMeta(ctx),
        details: { kind: 'push', purpose: row.data.purpose, client: clientOf(row.data), device: device.name },
      });
      if (notMe) inBackground(deps.log, 'push not-me mail', () => mailPushNotMe(deps, user, device, row));
    }
    ctx.body = { status: 'denied' };
  });

  router.post('/subscription', signed, async (ctx) => {
    const { device, body } = signedOf(ctx);
    const subscription = subscriptionFrom(deps, input(subscriptionInput, body).subscription);
    await store.pushDevices.setSubscription(device.id, subscription, subscription ? (await vapidKey(store)).id : null);
    const now = await store.pushDevices.findByKey(device.keyId);
    ctx.state.log?.info({ device: device.id, push: !!subscription }, 'phone subscription changed');
    ctx.body = { device: deviceView(now ?? device) };
  });

  router.post('/sign-out', signed, async (ctx) => {
    const { device, user } = signedOf(ctx);
    if (await store.pushDevices.signOut(device.id)) {
      await deps.events.record({ type: 'push.signed_out', userId: user.id, ...requestMeta(ctx), details: { kind: 'push', device: device.name } });
    }
    ctx.body = { status: 'signed-out' };
  });

  const routes = router.routes();
  const allowed = router.allowedMethods();

  return async function phoneAppApi(ctx: Context, next: Next) {
    if (ctx.path !== API_PREFIX && !ctx.path.startsWith(`${API_PREFIX}/`)) return next();
    const language = fromAcceptLanguage(ctx.get('accept-language')) ?? DEFAULT_LANGUAGE;
    await runInLanguage({ language, chosen: false }, async () => {
      try {
        await allowed(ctx as Parameters<typeof allowed>[0], () => routes(ctx as Parameters<typeof routes>[0], async () => undefined));
        if (ctx.status === 405 || ctx.status === 501) throw new ApiError('method_not_allowed', 405);
        if (ctx.body === undefined || ctx.body === null) throw new ApiError('not_found', 404);
      } catch (err) {
        sendApiError(deps, ctx, err);
      }
      ctx.set('Cache-Control', 'no-store');
    });
  };
}

/** The app's client id a prompt was for (security events name it), when it has one. */
function clientOf(data: Record<string, unknown>): string | undefined {
  const id = (data.origin as { client?: { id?: unknown } } | undefined)?.client?.id;
  return typeof id === 'string' ? id : undefined;
}

/** Answers with `{error, message, ...details}`; anything unexpected is a logged 500 without details. */
function sendApiError(deps: AppApiDeps, ctx: Context, err: unknown): void {
  const error = toApiError(err);
  if (error.status >= 500) (ctx.state.log ?? deps.log).error({ err }, 'phone app request failed');
  const { t } = deps.render;
  const key = `pushApi.errors.${error.code}`;
  ctx.status = error.status;
  if (typeof error.details.retryAfter === 'number') ctx.set('Retry-After', String(error.details.retryAfter));
  ctx.body = { error: error.code, message: t.has(key) ? t(key, error.details) : error.code, ...error.details };
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof PromptError) {
    return new ApiError(err.code, PROMPT_STATUS[err.code], err.code === 'wrong_number' || err.code === 'prompt_ended' ? { attemptsLeft: err.attemptsLeft ?? 0 } : {});
  }
  if (err instanceof ThrottledError) {
    return new ApiError('too_many_attempts', 429, err.locked ? { locked: true } : { retryAfter: err.retryAfterSeconds });
  }
  const status = err instanceof AppError ? err.status : (err as { status?: unknown })?.status;
  if (typeof status === 'number' && status === 413) return new ApiError('too_large', 413);
  if (typeof status === 'number' && status >= 400 && status < 500) return new ApiError('invalid_request', 400);
  return new ApiError('server_error', 500);
}
