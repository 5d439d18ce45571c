/**
 * Known devices: the browsers the user completed a sign-in on (security/device.ts). A known device is
 * one reason fewer for "verify only when a sign-in looks risky" to ask for a second step; forgetting one
 * makes its next sign-in ask again.
 */
import { z } from 'zod';
import { deviceCookie, deviceHash } from '../security/device.ts';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { doneRedirect, formatTime, renderPage } from './page.ts';
import { maskIp } from './place.ts';
import { describeDevice } from './sessions.ts';

const forgetForm = z.object({ id: z.uuid() });

async function show(deps: AccountDeps, ctx: AccountContext, vars: Record<string, unknown> = {}, status = 200) {
  const { user } = ctx.state;
  const mine = deviceCookie(deps.config).read(ctx);
  const here = mine ? deviceHash(mine) : undefined;
  const devices = (await deps.store.devices.listForUser(user.id)).map((d) => ({
    id: d.id,
    current: d.deviceHash === here,
    device: describeDevice(deps, d.userAgent),
    place: maskIp(d.ip),
    firstSeen: formatTime(d.firstSeenAt),
    lastSeen: formatTime(d.lastSeenAt),
  }));
  devices.sort((a, b) => Number(b.current) - Number(a.current));
  renderPage(deps, ctx, 'account/devices.njk', 'devices', { devices, ...vars }, status);
}

export function showDevices(deps: AccountDeps) {
  return async function devicesPage(ctx: AccountContext) {
    await show(deps, ctx);
  };
}

export function forgetDevice(deps: AccountDeps) {
  return async function forget(ctx: AccountContext) {
    const { user } = ctx.state;
    const parsed = forgetForm.safeParse(ctx.state.form);
    if (!parsed.success || !(await deps.store.devices.forget(user.id, parsed.data.id))) {
      return show(deps, ctx, { error: deps.render.t('account.devices.gone') }, 400);
    }
    await deps.events.record({ type: 'device.forgotten', userId: user.id, ...requestMeta(ctx) });
    doneRedirect(deps, ctx, '/account/devices', 'device');
  };
}
