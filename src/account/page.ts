/**
 * Rendering an account page: never cached, the navigation, a fresh CSRF token, the signed-in user, and a
 * one-line notice after a change (`?done=<key>`, from a fixed list; anything else shows nothing).
 */
import type { Context } from 'koa';
import { pageRenderer } from '../http/page.ts';
import { timeMarkup, type Markup } from '../http/render.ts';
import type { AccountContext, AccountDeps } from './context.ts';

export type Section = 'profile' | 'security' | 'sessions' | 'devices' | 'apps' | 'activity';

const NOTICES = new Set(['name', 'password', 'verification', 'session', 'sessions', 'app', 'device',
  'twoStepAdded', 'twoStepChanged', 'twoStepRemoved', 'twoStepRenamed', 'passkeysOff']);

export function renderPage(deps: AccountDeps, ctx: AccountContext, template: string, section: Section, vars: Record<string, unknown> = {}, status = 200): void {
  const done = typeof ctx.query.done === 'string' && NOTICES.has(ctx.query.done) ? ctx.query.done : undefined;
  pageRenderer(deps.render, deps.csrf)(ctx, template, {
    section,
    user: ctx.state.user,
    notice: done && status < 400 ? deps.render.t(`account.done.${done}`) : undefined,
    ...vars,
  }, status);
}

/** After a change: back to a page with its notice (POST, redirect, GET). */
export function doneRedirect(deps: AccountDeps, ctx: Context, page: string, done: string): void {
  ctx.status = 303;
  ctx.redirect(`${deps.config.issuer}${page}?done=${done}`);
}

/** A time for a page: `<time datetime>` with the UTC time in words, shown in the viewer's time zone by a script. */
export const formatTime = (d: Date | null | undefined): Markup | undefined => (d ? timeMarkup(d) : undefined);
