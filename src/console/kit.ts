/**
 * The console's kit (context.ts `ConsoleKit`): the steps every section's routes are built from.
 *
 *   signedIn            the console session and its user (session.ts), with the request's actor
 *   form                the POST body, its CSRF token and Origin checked before anything else
 *   stepUp(action, back) a sign-in at most console.stepUpSeconds old at the level the user needs, else
 *                       through /auth (max_age, acr_values, latchkey_action) and back to `back`; a POST
 *                       that arrives without one changes nothing and is a denied audit row
 *   page / flash        a console page (never cached, the layout's variables), a redirect with a notice
 */
import type { Context, Next } from 'koa';
import type { Actor } from '../admin/operations/actor.ts';
import { authorize, type Permission } from '../admin/operations/permissions.ts';
import { AppError } from '../errors.ts';
import { ADMIN_APP } from '../first-party/app.ts';
import { sessionCookies } from '../first-party/cookies.ts';
import { startSignIn } from '../first-party/flow.ts';
import { checkedForm } from '../http/csrf.ts';
import { satisfies } from '../security/level.ts';
import type { ConsoleContext, ConsoleDeps, ConsoleKit, SensitiveAction } from './context.ts';
import { auditRefusal, consoleRoles, requireConsoleSession, requiredLevel } from './session.ts';

const NOTICE_COOKIE = 'lk.admin.notice';
const NOTICE_SECONDS = 60;
// Characters: the cookie holds at most 1500 base64url characters, and a character may take three bytes.
const NOTICE_MAX = 300;

/** Whether the actor's roles allow `permission` (on `target`): what a page shows. The operations decide. */
export function may(actor: Actor, permission: Permission, target?: { roles: readonly string[] }): boolean {
  try {
    authorize(actor, permission, target);
    return true;
  } catch {
    return false;
  }
}

/**
 * What the roles may not do (a 403 from an operation, or from a page for writers only) shows as the
 * section's own page (`template`, with `refused`) in the console's frame, rather than as the site's error page.
 */
export function refusedOn(kit: ConsoleKit, template: string) {
  return async function sectionRefusal(ctx: ConsoleContext, next: Next) {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof AppError) || err.status !== 403 || !err.expose) throw err;
      kit.page(ctx, template, { refused: err.message }, 403);
    }
  };
}

/** A form or confirmation page is for those who may go on: a read-only role gets a 403 page (before any step-up). */
export function writersOnly(kit: ConsoleKit, permission: Permission, messageKey: string) {
  return async function writers(ctx: ConsoleContext, next: Next) {
    if (!may(ctx.state.actor, permission)) throw new AppError('console.read_only', 403, kit.deps.render.t(messageKey));
    await next();
  };
}

/** The sections of the navigation, each shown to the roles that may read it. */
const SECTIONS: readonly { id: string; path: string; permission: Permission }[] = [
  { id: 'users', path: '/admin/users', permission: 'users.read' },
  { id: 'clients', path: '/admin/clients', permission: 'clients.read' },
  { id: 'keys', path: '/admin/keys', permission: 'keys.read' },
  { id: 'audit', path: '/admin/audit', permission: 'audit.read' },
];

/** What the audit log calls each sensitive action (the operation's own action name) and what it is on. */
const STEP_UP_AUDIT: { readonly [A in SensitiveAction]: { action: string; target: string } } = {
  'two-step-reset': { action: 'users.reset_two_step', target: 'user' },
  'user-delete': { action: 'users.delete', target: 'user' },
  'roles-grant': { action: 'users.roles', target: 'user' },
  'keys-rotate': { action: 'keys.rotate', target: 'signing_key' },
  'keys-retire': { action: 'keys.retire', target: 'signing_key' },
  'client-secret-rotate': { action: 'clients.rotate_secret', target: 'client' },
};

const epochNow = () => Math.floor(Date.now() / 1000);

export function createKit(deps: ConsoleDeps): ConsoleKit {
  const { t } = deps.render;
  const notices = sessionCookies(deps.config, ADMIN_APP);
  const csrfForm = checkedForm(deps.csrf);

  function takeNotice(ctx: Context): string | undefined {
    const raw = notices.get(ctx, NOTICE_COOKIE);
    if (raw === undefined) return undefined;
    notices.clear(ctx, NOTICE_COOKIE);
    return Buffer.from(raw, 'base64url').toString('utf8');
  }

  function stepUp(action: SensitiveAction, back: string | ((ctx: ConsoleContext) => string)) {
    return async function freshSignIn(ctx: ConsoleContext, next: Next) {
      const need = await requiredLevel(deps, ctx.state.user);
      const { session } = ctx.state;
      const maxAge = deps.config.console.stepUpSeconds;
      const age = epochNow() - Math.floor(session.authTime.getTime() / 1000);
      if (satisfies(session.acr, need) && age <= maxAge) return next();
      if (ctx.method !== 'GET') {
        const audit = STEP_UP_AUDIT[action];
        const id = typeof ctx.params?.id === 'string' ? ctx.params.id : null;
        await auditRefusal(deps, ctx.state.actor, audit.action, { type: audit.target, id }, 'step_up_required',
          `${action} needs a sign-in at ${need} at most ${maxAge} seconds old; this one is ${age} seconds old at ${session.acr}`);
      }
      startSignIn(deps.config, ADMIN_APP, ctx, {
        returnTo: typeof back === 'string' ? back : back(ctx), maxAge, acrValues: need, action,
        account: { id: ctx.state.user.id, email: ctx.state.user.email },
      });
    };
  }

  function page(ctx: ConsoleContext, template: string, vars: Record<string, unknown> = {}, status = 200): void {
    const { actor, user } = ctx.state;
    const roles = consoleRoles(user);
    const section = ctx.path.slice(ADMIN_APP.path.length).split('/')[1] || 'home';
    ctx.set('Cache-Control', 'no-store');
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = deps.render(template, {
      csrf: deps.csrf.token(ctx),
      errors: {},
      user,
      roles,
      rolesText: roles.map((r) => t(`console.roles.${r}`)).join(', '),
      section,
      nav: SECTIONS.filter((s) => may(actor, s.permission)).map((s) => ({ ...s, label: t(`console.nav.${s.id}`) })),
      // Read-only: no role of the user writes anything (an auditor).
      readOnly: !may(actor, 'users.write'),
      notice: takeNotice(ctx),
      ...vars,
    });
  }

  function flash(ctx: ConsoleContext, path: string, notice: string): void {
    notices.set(ctx, NOTICE_COOKIE, Buffer.from(notice.slice(0, NOTICE_MAX), 'utf8').toString('base64url'), NOTICE_SECONDS);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${deps.config.issuer}${path}`);
  }

  return {
    deps,
    signedIn: requireConsoleSession(deps) as ConsoleKit['signedIn'],
    form: csrfForm as ConsoleKit['form'],
    stepUp: stepUp as ConsoleKit['stepUp'],
    page,
    flash,
  };
}
