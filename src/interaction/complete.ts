/**
 * The end of a sign-in whose proofs meet its requirement: the device and the network become known, the
 * account's failure counter is cleared (only now: a password alone never clears it), the record of the
 * sign-in in progress goes, the owner is alerted about a sign-in on a new device, and grant.ts hands
 * oidc-provider the login with the level derived from the proofs.
 */
import type { Amr } from '../factors/types.ts';
import { networkPrefix } from '../http/ip.ts';
import { currentLanguage, languageOf, withLanguage } from '../i18n.ts';
import { maskIp } from '../account/place.ts';
import { describeDevice } from '../account/sessions.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { deviceCookie, deviceHash } from '../security/device.ts';
import { grantLogin } from './grant.ts';
import { levelOf } from '../security/level.ts';
import { inBackground } from '../mail-flows/mail-links.ts';
import { offerPasskey, shouldOfferPasskey } from './passkey-offer.ts';
import { showRecoveryLeft, usedRecoveryCode } from './recovery-notice.ts';
import { stepBinding, type SignInState } from './state.ts';
import { requestMeta } from '../http/request-meta.ts';
import { accountKey } from '../security/attempts.ts';

/** How long the "this wasn't me" link of a new-device alert works. */
export const NOT_ME_TTL_SECONDS = 7 * 86400;

export async function completeSignIn(deps: InteractionDeps, ctx: InteractionContext, state: SignInState): Promise<void> {
  const { user, proofs, requirement, reasons } = state;
  const { details } = ctx.state;
  const meta = requestMeta(ctx);
  const extraAmr: Amr[] = requirement.rba ? ['rba'] : [];
  const level = levelOf(proofs, extraAmr);

  const id = deviceCookie(deps.config).ensure(ctx);
  const prefix = networkPrefix(ctx.ip);
  const place = prefix ? deps.geoip?.lookup(ctx.ip) : undefined;
  const succeeded = (added: boolean) => ({ amr: level.amr, acr: level.acr, client: details.params.client_id, ...(reasons.length ? { reasons } : {}), ...(added ? { newDevice: true } : {}) });
  // All in one statement (store/sign-in-progress.ts `finish`): the device and the network become known, the
  // account's failure counter is cleared, their mails follow the language they sign in in (the picker's, the
  // app's ui_locales, the browser's), the sign-in's record and pending steps go, and the event is stored.
  const { devicesBefore, added } = await deps.store.progress.finish({
    interactionUid: details.uid, binding: stepBinding(details.uid), userId: user.id,
    device: { deviceHash: deviceHash(id), ...meta },
    ...(prefix ? { network: { prefix, country: place?.country ?? null, latitude: place?.latitude ?? null, longitude: place?.longitude ?? null } } : {}),
    counterKey: accountKey(user.email),
    language: currentLanguage(),
    event: { type: 'sign_in.succeeded', ...meta, details: succeeded(false), detailsIfNew: succeeded(true) },
  });
  deps.events.logged({ type: 'sign_in.succeeded', userId: user.id, ...meta, details: succeeded(added) });
  // A recovery code (the backup method) is a last resort: its use is always news, on a known device too,
  // with how many are left.
  const recovery = usedRecoveryCode(state);
  const left = recovery ? await deps.store.codes.countLive('recovery_code', user.id) : 0;
  if (recovery) {
    await deps.events.record({ type: 'recovery_code.used', userId: user.id, ...meta, details: { left, client: details.params.client_id } });
  }
  // The first device of an account is not news; a new one after that is.
  const newDevice = added && devicesBefore > 0 && deps.config.risk.newDeviceAlert;
  if (recovery || newDevice) {
    inBackground(deps.log, recovery ? 'recovery code alert' : 'new device alert', async () => {
      const token = await deps.store.codes.issue('not_me', user.id, NOT_ME_TTL_SECONDS, { deviceHash: deviceHash(id) });
      const masked = maskIp(meta.ip);
      const place = deps.geoip?.lookup(meta.ip)?.country;
      // In the language the account had before this sign-in: the alert is for the owner, who may not be the one signing in.
      const language = languageOf(user);
      await deps.mailer.send(user.email, recovery ? 'recovery-code-used' : 'new-sign-in', withLanguage(language, () => ({
        device: describeDevice(deps, meta.userAgent),
        place: [masked, place].filter(Boolean).join(', ') || deps.render.t('account.sessions.placeUnknown'),
        time: new Date(),
        notMeLink: `${deps.config.issuer}/not-me?token=${token}`,
        ...(recovery ? { left } : {}),
      })), language);
    });
  }
  if (recovery) return showRecoveryLeft(deps, ctx, state);
  if (state.passkeyCapable && (await shouldOfferPasskey(deps, ctx, state, deviceHash(id)))) return offerPasskey(deps, ctx, state);
  await grantLogin(ctx, deps.provider(), { accountId: user.id, proofs, requirement, extraAmr, remember: state.keepSignedIn });
}
