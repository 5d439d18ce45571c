/**
 * The console's keys section, read as a table (ConsoleKit in context.ts): the signing keys with their
 * state and dates; rotating (all configured algorithms, or one) and retiring one key, each after a fresh
 * step-up and a confirmation page that names what it changes. The operations of
 * src/admin/operations/keys.ts check the role, decide what may be retired, and leave the audit rows.
 * Besides the kit's steps, `refused` shows a 403 as this section's page, and `writersOnly` keeps a
 * confirmation page (and its step-up) from a role that may only read.
 */
import type Router from '@koa/router';
import { listKeys, retireKey, rotateKeys, type KeyView } from '../admin/operations/keys.ts';
import { AppError } from '../errors.ts';
import { activationDelay } from '../oidc/keys.ts';
import { timeMarkup } from '../http/render.ts';
import type { ConsoleContext, ConsoleKit } from './context.ts';
import { may, refusedOn, writersOnly } from './kit.ts';

const paramKid = (ctx: ConsoleContext) => String((ctx as ConsoleContext & { params: Record<string, string> }).params.id ?? '');
const retirePage = (ctx: ConsoleContext) => `/admin/keys/${encodeURIComponent(paramKid(ctx))}/retire`;

/** Whether the signed-in roles may change keys: which buttons show (the operations check again). */
const mayWrite = (ctx: ConsoleContext) => may(ctx.state.actor, 'keys.write');

export function keyRoutes(router: Router, kit: ConsoleKit): void {
  const refused = refusedOn(kit, 'admin/keys.njk');
  router.get('/keys', kit.signedIn, refused, showKeys(kit));
  router.get('/keys/rotate', kit.signedIn, refused, writersOnly(kit, 'keys.write', 'console.keys.readOnly'), kit.stepUp('keys-rotate', '/admin/keys/rotate'), confirmRotate(kit));
  router.post('/keys/rotate', kit.form, kit.signedIn, refused, kit.stepUp('keys-rotate', '/admin/keys/rotate'), rotate(kit));
  router.get('/keys/:id/retire', kit.signedIn, refused, writersOnly(kit, 'keys.write', 'console.keys.readOnly'), kit.stepUp('keys-retire', retirePage), confirmRetire(kit));
  router.post('/keys/:id/retire', kit.form, kit.signedIn, refused, kit.stepUp('keys-retire', retirePage), retire(kit));
}

/** A refusal the operation means for the person at the page (a 4xx with its message), or undefined. */
function refusalOf(err: unknown): AppError | undefined {
  return err instanceof AppError && err.expose && err.status < 500 && err.status !== 403 ? err : undefined;
}

const rowOf = (k: KeyView) => ({
  kid: k.kid, alg: k.alg, state: k.state, active: k.state === 'active', createdAt: timeMarkup(k.createdAt),
  activatesAt: k.activatesAt && timeMarkup(k.activatesAt), retiredAt: k.retiredAt && timeMarkup(k.retiredAt), publishedUntil: k.publishedUntil && timeMarkup(k.publishedUntil),
});

function showKeys(kit: ConsoleKit) {
  return async function keysPage(ctx: ConsoleContext) {
    const keys = (await listKeys(kit.deps, ctx.state.actor)).map(rowOf);
    kit.page(ctx, 'admin/keys.njk', { keys, canWrite: mayWrite(ctx) });
  };
}

function rotatePage(kit: ConsoleKit, ctx: ConsoleContext, vars: { error?: string } = {}, status = 200) {
  kit.page(ctx, 'admin/keys-rotate.njk', { algorithms: kit.deps.config.keys.algorithms, seconds: activationDelay(kit.deps.config), ...vars }, status);
}

function confirmRotate(kit: ConsoleKit) {
  return async function rotateConfirmation(ctx: ConsoleContext) {
    rotatePage(kit, ctx);
  };
}

function rotate(kit: ConsoleKit) {
  return async function rotateNow(ctx: ConsoleContext) {
    const alg = ctx.state.form.alg ?? '';
    try {
      // Empty: every configured algorithm; otherwise the one chosen, which the operation checks.
      const kids = await rotateKeys(kit.deps, ctx.state.actor, alg ? [alg.slice(0, 20)] : undefined);
      kit.flash(ctx, '/admin/keys', kit.deps.render.t('console.keys.rotated', { kids: kids.join(', '), seconds: activationDelay(kit.deps.config) }));
    } catch (err) {
      const refusal = refusalOf(err);
      if (!refusal) throw err;
      rotatePage(kit, ctx, { error: refusal.message }, refusal.status);
    }
  };
}

async function findKey(kit: ConsoleKit, ctx: ConsoleContext): Promise<KeyView> {
  const kid = paramKid(ctx);
  const key = (await listKeys(kit.deps, ctx.state.actor)).find((k) => k.kid === kid);
  if (!key) throw new AppError('console.key_not_found', 404, kit.deps.render.t('console.keys.notFound', { kid: kid.slice(0, 40) }));
  return key;
}

function confirmRetire(kit: ConsoleKit) {
  return async function retireConfirmation(ctx: ConsoleContext) {
    const key = await findKey(kit, ctx);
    kit.page(ctx, 'admin/keys-retire.njk', { key: rowOf(key) });
  };
}

function retire(kit: ConsoleKit) {
  return async function retireNow(ctx: ConsoleContext) {
    const key = await findKey(kit, ctx);
    try {
      const retired = await retireKey(kit.deps, ctx.state.actor, key.kid);
      kit.flash(ctx, '/admin/keys', kit.deps.render.t('console.keys.retired', { kid: retired.kid }));
    } catch (err) {
      const refusal = refusalOf(err);
      if (!refusal) throw err;
      kit.page(ctx, 'admin/keys-retire.njk', { key: rowOf(key), error: refusal.message }, refusal.status);
    }
  };
}
