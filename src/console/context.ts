/**
 * What the admin console's routes share (the contract between its core and its sections): the services
 * (the operations take them), the per-request state a signed-in administrator brings, and the steps a
 * section's routes are built from (`ConsoleKit`).
 */
import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Actor } from '../admin/operations/actor.ts';
import type { Csrf } from '../http/csrf.ts';
import type { Render } from '../http/render.ts';
import type { Services } from '../services.ts';
import type { ConsoleSession } from '../store/console-sessions.ts';
import type { User } from '../store/users.ts';

export type ConsoleDeps = Services & { render: Render; csrf: Csrf; provider: () => Provider };

/** The console's own session (the `lk.admin` cookie), as its store row reads. */
export type { ConsoleSession } from '../store/console-sessions.ts';

export interface ConsoleState {
  /** The submitted form (POST), read and CSRF/Origin-checked by `kit.form`. */
  form: Record<string, string>;
  /** Set by `kit.signedIn`. */
  session: ConsoleSession;
  user: User;
  /** The operations' actor for this request: `{ via: 'console', userId, roles, acr, ip, userAgent, requestId }`. */
  actor: Actor;
}

export type ConsoleContext = Context & { state: ConsoleState };

/**
 * The sensitive actions: each needs a sign-in at most `console.stepUpSeconds` old, and the step-up page
 * names the action (locale key `console.stepUp.action.<name>`).
 */
export const SENSITIVE_ACTIONS = ['two-step-reset', 'user-delete', 'roles-grant', 'keys-rotate', 'keys-retire', 'client-secret-rotate'] as const;
export type SensitiveAction = (typeof SENSITIVE_ACTIONS)[number];

export interface ConsoleKit {
  deps: ConsoleDeps;
  /** The console session and its active user holding a console role, else sign in (GET: back to this page). */
  signedIn: Middleware;
  /** POST bodies: the CSRF token and the Origin, checked before anything else. */
  form: Middleware;
  /**
   * After `signedIn`: continues when the sign-in is fresh enough for `action`, else sends the browser to
   * step up (max_age + acr_values, the action named on the page) and back to `back` (a console path).
   */
  stepUp(action: SensitiveAction, back: string | ((ctx: ConsoleContext) => string)): Middleware;
  /**
   * Renders a console page (it extends `admin/console-layout.njk`), never cached, with `csrf`, `user`,
   * `roles`, `section` and `notice` (a one-time message set by `flash`) in its variables.
   */
  page(ctx: ConsoleContext, template: string, vars?: Record<string, unknown>, status?: number): void;
  /** Redirects (303) to a console path with a one-time notice to show there. */
  flash(ctx: ConsoleContext, path: string, notice: string): void;
}

/** One of SENSITIVE_ACTIONS (the sign-in pages name only these: first-party/step-up-action.ts). */
export const isSensitiveAction = (value: unknown): value is SensitiveAction =>
  typeof value === 'string' && (SENSITIVE_ACTIONS as readonly string[]).includes(value);
