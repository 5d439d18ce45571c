/**
 * CIBA (OpenID Connect Client-Initiated Backchannel Authentication Core 1.0) on the phone app's approval
 * (README, "Mobile app prompts", "CIBA"). oidc-provider's `features.ciba` speaks the protocol; this file
 * decides whom a request may reach and hands the answer back:
 *
 * - Confidential clients only, in poll or ping mode; `login_hint` is the user's email address.
 *   `login_hint_token`, `id_token_hint` and `user_code` are refused with `invalid_request`.
 * - `unknown_user_id` for an address with no active user AND for a user with no phone that can get
 *   prompts: the same words, so the answer tells an app no more than "this address cannot be asked".
 * - The prompt is the sign-in prompt's (push/prompts.ts): the same limits; a refusal by them (prompts
 *   paused after "This wasn't me", too many, too soon, the cap per IP) is `access_denied`, 403 (CIBA §13:
 *   the OpenID Provider denied the request).
 * - The approval is a `push` proof (possession, `mca`) and nothing more: no password was typed, so the
 *   level is what security/level.ts derives from it (`urn:latchkey:acr:1fa`). A request or client that
 *   needs more is refused at once with `invalid_request`, before anyone's phone rings.
 * - Single use: the device's answer is one conditional write (push/prompts.ts), and the settlement takes
 *   the prompt out (one conditional delete) before it calls `backchannelResult`, which would otherwise
 *   overwrite an earlier result.
 * - oidc-provider has no `slow_down`: a poll answered `authorization_pending` sooner than
 *   POLL_INTERVAL_SECONDS after the last one is answered `slow_down` (a shared counter per request).
 */
import { createHash } from 'node:crypto';
import type { Next } from 'koa';
import type Provider from 'oidc-provider';
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.ts';
import type { PushSender } from '../delivery/push.ts';
import { push as pushFactor } from '../factors/push.ts';
import { FactorError, type Proof } from '../factors/types.ts';
import type { GeoIp } from '../geoip.ts';
import { grantBackchannel, refuseBackchannel, type BackchannelAccess, type BackchannelRequest } from '../interaction/grant.ts';
import type { Logger } from '../log.ts';
import { promptOrigin } from '../push/origin.ts';
import { deliver, deviceLive, onSettled, promptStep, PUSH, type PromptDeps, type Settle } from '../push/prompts.ts';
import { levelOf, meets, requiredLevel, type Requirement } from '../security/level.ts';
import type { Store } from '../store/index.ts';
import type { PendingRow } from '../store/pending-steps.ts';
import type { PushDevice } from '../store/push-devices.ts';
import { PRINTABLE } from '../text.ts';
import { CIBA_GRANT, CIBA_MODES } from './clients.ts';

/** The `interval` the backchannel response names (CIBA's default); polls closer together get `slow_down`. */
export const POLL_INTERVAL_SECONDS = 5;
export const BINDING_MESSAGE_MAX = 64;
/** A CIBA prompt's pending step is bound to its request: `ciba:<auth_req_id>`. */
const BINDING = 'ciba:';

/** What an approval proves: the phone, as at sign-in. */
const proofShape = pushFactor.proof;

export interface CibaDeps {
  config: Config;
  store: Store;
  log: Logger;
  /** Absent on providers made only to validate clients (the CLI): they never start a request. */
  push?: PushSender | undefined;
  geoip?: GeoIp | undefined;
}

type CibaFeature = NonNullable<NonNullable<Configuration['features']>['ciba']>;

const invalid = (description: string) => new errors.InvalidRequest(description);
/** access_denied from the backchannel endpoint: 403, as CIBA §13 has it (oidc-provider's default is 400). */
const denied = (description: string) => Object.assign(new errors.AccessDenied(description), { status: 403, statusCode: 403 });

/** A request lives as long as a prompt (`twoStep.push.promptTtlSeconds`), or less when the app asks for less. */
export const cibaTtl = (config: Config) => (ctx: KoaContextWithOIDC | undefined): number => {
  const most = config.twoStep.push.promptTtlSeconds;
  const asked = Number(ctx?.oidc?.params?.requested_expiry);
  return Number.isSafeInteger(asked) && asked > 0 ? Math.min(asked, most) : most;
};

/** The level the request needs: its acr_values or essential acr claim, raised to the client's minimum. */
function requirementOf(params: Record<string, unknown> | undefined, claims: unknown, minimum: unknown): Requirement {
  const acrClaim = (claims as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } } | undefined)?.id_token?.acr;
  const acrValues = typeof params?.acr_values === 'string' ? params.acr_values : undefined;
  return { acr: requiredLevel({ acrValues, acrClaim, clientMinimum: typeof minimum === 'string' ? minimum : undefined }), secondStep: false, rba: false };
}

const proofOf = (device: PushDevice): Proof => ({ kind: 'push', authenticatorId: device.authenticatorId ?? device.id, ...proofShape });
const REACHED = levelOf([{ kind: 'push', authenticatorId: '(phone)', ...proofShape }]).acr;

/** oidc-provider's `features.ciba`, its helpers Latchkey's. */
export function cibaFeature(deps: CibaDeps): CibaFeature {
  const { config, store, log } = deps;
  return {
    enabled: true,
    deliveryModes: [...CIBA_MODES],

    // Runs first, before the user is looked up: what Latchkey never takes, whoever the user is.
    async validateRequestContext(ctx) {
      if (ctx.oidc.client?.clientAuthMethod === 'none') throw new errors.UnauthorizedClient('CIBA is for confidential clients only');
      if (ctx.oidc.params?.id_token_hint !== undefined || ctx.oidc.params?.login_hint_token !== undefined) {
        throw invalid('only login_hint (the user\'s email address) identifies the user here; id_token_hint and login_hint_token are not supported');
      }
    },

    async validateBindingMessage(_ctx, message) {
      if (message === undefined) return;
      const length = [...message].length;
      if (length < 1 || length > BINDING_MESSAGE_MAX || !PRINTABLE.test(message) || !message.trim()) {
        throw new errors.InvalidBindingMessage(`binding_message must be 1 to ${BINDING_MESSAGE_MAX} printable characters, without control or bidirectional characters`);
      }
    },

    async processLoginHintToken() {
      throw invalid('login_hint_token is not supported; send the user\'s email address as login_hint');
    },

    /**
     * The hint is the user's email address: their account id when they are active and have a phone that
     * can get prompts; otherwise undefined, which oidc-provider answers `unknown_user_id` (no user and no
     * phone alike). A request needing more than an approval can give is refused before anyone is looked up.
     */
    async processLoginHint(ctx, hint) {
      const requirement = requirementOf(ctx.oidc.params, ctx.oidc.claims, ctx.oidc.client?.metadata().minimum_acr);
      if (!meets([{ kind: 'push', authenticatorId: '(phone)', ...proofShape }], requirement)) {
        throw invalid(`an approval on the phone reaches ${REACHED}; this request or client needs ${requirement.acr}`);
      }
      if (typeof hint !== 'string' || hint.length > 320) return undefined;
      const user = await store.users.findByEmail(hint.trim());
      // The device lookup runs for an unknown address too, so the two answers take about as long.
      const devices = await store.pushDevices.listForUser(user?.id ?? '');
      if (!user || user.status !== 'active' || user.recoveryPendingAt || !devices.some((d) => deviceLive(d))) return undefined;
      return user.id;
    },

    async verifyUserCode(_ctx, _account, userCode) {
      if (userCode !== undefined) throw invalid('user_code is not supported (backchannel_user_code_parameter_supported is false)');
    },

    /**
     * The request is saved and its response made: send the prompt, within the sign-in prompt's limits. A
     * refusal by the limits ends the request (destroyed) with access_denied.
     */
    async triggerAuthenticationDevice(ctx, request, account, client) {
      if (!deps.push) throw new Error('this provider cannot reach phones (made without a push sender)');
      const promptDeps: PromptDeps = { store, config, push: deps.push, log };
      const user = await store.users.findById(account.accountId);
      if (!user) throw new errors.UnknownUserId('could not identify end-user');
      const origin = promptOrigin(deps.geoip, { ip: ctx.ip, userAgent: ctx.get('user-agent') || null },
        { id: client.clientId, name: client.clientName ?? client.clientId, logoUrl: client.logoUri ?? null });
      const message = request.params?.binding_message;
      let step;
      try {
        step = await promptStep(promptDeps, user, {
          purpose: 'ciba', origin, bindingMessage: typeof message === 'string' ? message : undefined, ttlSeconds: Math.max(1, request.expiration),
        });
      } catch (err) {
        if (!(err instanceof FactorError) || (err.code !== 'unavailable' && err.code !== 'limited')) throw err;
        await request.destroy();
        log.info({ client: client.clientId, reason: err.code }, 'CIBA request refused by the prompt limits');
        throw denied(err.code === 'unavailable'
          ? 'prompts to this user are paused for a while'
          : 'too many prompts to this user; try again later');
      }
      const row = await store.pending.put({
        binding: `${BINDING}${request.jti}`, userId: user.id, kind: PUSH, authenticatorId: step.authenticatorId,
        data: step.data, secret: step.secret, attempts: step.attempts, ttlSeconds: step.ttlSeconds,
      });
      (ctx.body as Record<string, unknown>).interval = POLL_INTERVAL_SECONDS;
      await deliver(promptDeps, row).catch((err: unknown) => log.warn({ err }, 'CIBA prompt delivery failed'));
      log.info({ client: client.clientId, mode: client.backchannelTokenDeliveryMode }, 'CIBA request sent to the phone');
    },
  };
}

/**
 * Added to the provider with `provider.use`: what oidc-provider's CIBA does not say as Latchkey does.
 * Discovery advertises `backchannel_user_code_parameter_supported: false` (oidc-provider always says
 * true), and a poll answered `authorization_pending` within the interval of the one before is answered
 * `slow_down` instead (a pending answer changes nothing, so it can be replaced after the fact).
 */
export function cibaProtocol(store: Store) {
  return async function cibaProtocol(ctx: KoaContextWithOIDC, next: Next): Promise<void> {
    await next();
    const route = ctx.oidc?.route;
    const body = ctx.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object') return;
    if (route === 'discovery' && body.backchannel_authentication_endpoint) body.backchannel_user_code_parameter_supported = false;
    if (route === 'token' && ctx.oidc.params?.grant_type === CIBA_GRANT && body.error === 'authorization_pending') {
      const id = createHash('sha256').update(String(ctx.oidc.params.auth_req_id)).digest('base64url').slice(0, 32);
      // A window a second shorter than the interval: a client that waits the interval is never told off.
      if (!(await store.counters.take(`ciba:poll:${id}`, 1, POLL_INTERVAL_SECONDS - 1))) {
        ctx.body = { error: 'slow_down', error_description: `poll at most every ${POLL_INTERVAL_SECONDS} seconds` };
      }
    }
  };
}

/** What an approval allows: the requested OIDC scopes and claims, and each requested resource's scopes. */
function accessOf(request: BackchannelRequest, config: Config): BackchannelAccess {
  const words = (request.scope ?? '').split(' ').filter(Boolean);
  const resourceScopes = new Set(Object.values(config.resources).flatMap((r) => r.scope.split(' ')));
  const indicators = request.resource === undefined ? [] : Array.isArray(request.resource) ? request.resource : [request.resource];
  const resources = Object.fromEntries(indicators.map((indicator) => {
    const offered = new Set(config.resources[indicator]?.scope.split(' ') ?? []);
    return [indicator, words.filter((w) => offered.has(w)).join(' ')];
  }));
  const claims = request.claims ?? {};
  return {
    scope: words.filter((w) => !resourceScopes.has(w)).join(' '),
    claims: [...new Set([...Object.keys(claims.id_token ?? {}), ...Object.keys(claims.userinfo ?? {})])],
    resources,
  };
}

/** What settling needs of the app whose device answered. */
export interface CibaApp {
  provider(): Provider;
  config: Config;
  log: Logger;
}

/** The app of each store, so a device's answer (push/prompts.ts) reaches that app's current provider. */
const apps = new WeakMap<Store, CibaApp>();

/** Hands the answers to CIBA prompts of this store to this app's provider (once per app; src/app.ts). */
export function settleCibaPrompts(store: Store, app: CibaApp): void {
  apps.set(store, app);
  onSettled('ciba', settleCiba);
}

const settleCiba: Settle = async (row, status, device, deps) => {
  const app = apps.get(deps.store);
  if (!app || !row.binding.startsWith(BINDING)) {
    deps.log.error('a CIBA prompt was answered, but no app hands CIBA results on');
    return;
  }
  try {
    await settle(app, deps, row, status, device);
  } catch (err) {
    // The answer stands (the prompt is resolved); the app's poll sees the result or, failing it, expiry.
    app.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'CIBA result not handed on (or its ping failed)');
  }
};

async function settle(app: CibaApp, deps: PromptDeps, row: PendingRow, status: 'approved' | 'denied', device: PushDevice): Promise<void> {
  // Single use: the first settlement takes the prompt out, in one conditional delete; any later one stops here.
  if (!(await deps.store.pending.take(row.id, row.binding))) return;
  const provider = app.provider();
  const request = await provider.BackchannelAuthenticationRequest.find(row.binding.slice(BINDING.length));
  if (!request || request.grantId || request.error || request.accountId !== row.userId) return;
  if (status === 'denied') {
    await refuseBackchannel(provider, request, row.data.deniedAs === 'not-me' ? 'the user did not ask for this' : 'the user denied the request');
    app.log.info({ client: request.clientId }, 'CIBA request denied on the phone');
    return;
  }
  const client = await provider.Client.find(request.clientId!);
  const requirement = requirementOf(request.params, request.claims, client?.metadata().minimum_acr);
  const proof = proofOf(device);
  if (!meets([proof], requirement)) {
    await refuseBackchannel(provider, request, `an approval on the phone does not reach ${requirement.acr}`);
    return;
  }
  if (device.authenticatorId) await deps.store.authenticators.markUsed(device.authenticatorId);
  const login = await grantBackchannel(provider, request, { accountId: row.userId!, proofs: [proof], requirement, remember: false }, accessOf(request, app.config));
  app.log.info({ client: request.clientId, acr: login.acr, amr: login.amr }, 'CIBA request approved on the phone');
}
