/**
 * The emails around an account's single-use links: email verification, password reset, the notice to the
 * owner of an address someone tried to sign up with, and the password-changed notice. Each link mail is
 * rate-limited per account (one a minute per kind) and per IP address (in shared counters), issuing a link kills the older ones,
 * and sending happens in the background: the answer a browser gets never waits for, or depends on, a mail.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { passwordProblem } from '../factors/password.ts';
import { fieldErrors, type FieldErrors } from '../http/page.ts';
import { languageOf } from '../i18n.ts';
import type { CodePurpose } from '../store/one-time-codes.ts';
import type { Logger } from '../log.ts';
import type { User } from '../store/users.ts';
import type { InteractionDeps } from '../interaction/context.ts';
import type { RequestMeta } from '../http/request-meta.ts';

export const MAIL_INTERVAL_SECONDS = 60;

/** A link token as it arrives in a query or form (base64url, 43 characters when issued); anything else is no token. */
export const linkToken = (value: unknown): string | undefined =>
  typeof value === 'string' && /^[A-Za-z0-9_-]{20,100}$/.test(value) ? value : undefined;

export type MailDeps = Pick<InteractionDeps, 'config' | 'store' | 'mailer' | 'events' | 'log'>;

/** How a page that lets a mailed link choose a password answers when it cannot go on. */
export interface PasswordPage {
  /** The link is not live (spent, expired, replaced, or no token at all). */
  dead(ctx: Context): void;
  /** The form again, with each problem at its field. */
  again(ctx: Context, vars: { token: string; email: unknown; errors: FieldErrors }, status: number): void;
}

const passwordForm = z.object({ password: z.string('forms.passwordRequired').min(1, 'forms.passwordRequired') });

/**
 * The POST of a page where a mailed link chooses a password (a reset, an invitation): the live link's token and
 * the chosen password, checked before the link is spent so a refused password does not cost it. Undefined when
 * the page has answered already (a dead link, or the form again).
 */
export async function passwordFromLink(deps: Pick<InteractionDeps, 'store' | 'render'>, ctx: Context, purpose: CodePurpose, page: PasswordPage): Promise<{ token: string; password: string } | undefined> {
  const raw = ctx.state.form as Record<string, string>;
  const token = linkToken(raw.token);
  const live = token ? await deps.store.codes.peek(purpose, token) : undefined;
  if (!token || !live) return void page.dead(ctx);
  const email = typeof live.data?.email === 'string' ? live.data.email : undefined;
  const parsed = passwordForm.safeParse(raw);
  const errors = parsed.success ? {} : fieldErrors(parsed.error, deps.render.t);
  const problem = parsed.success ? passwordProblem(parsed.data.password, { email }) : undefined;
  if (problem) errors.password = deps.render.t(problem.key, problem.vars);
  if (!parsed.success || problem) return void page.again(ctx, { token, email, errors }, 400);
  return { token, password: parsed.data.password };
}

export type { RequestMeta } from '../http/request-meta.ts';

/** Runs `task` without waiting for it; a failure is logged (never a secret: links live only in the mail). */
export function inBackground(log: Logger, task: string, run: () => Promise<unknown>): void {
  run().catch((err: unknown) => log.error({ err, task }, 'background task failed'));
}

/**
 * One mail of this kind per account and minute, and `mail.linksPerIpPerHour` link mails per IP address to
 * any accounts (a flood of mail to many addresses from one place); false when this one must not be sent.
 * The answer the browser gets is the same either way.
 */
async function allowed(deps: MailDeps, kind: string, user: User, meta: RequestMeta): Promise<boolean> {
  if (!(await deps.store.counters.take(`mail:${kind}:${user.id}`, 1, MAIL_INTERVAL_SECONDS))) return false;
  if (await deps.store.counters.take(`mail-ip:${meta.ip}`, deps.config.mail.linksPerIpPerHour, 3600)) return true;
  deps.log.warn({ ip: meta.ip, kind }, 'link mail not sent: too many from this address in the last hour');
  return false;
}

/** Sends a new verification link (killing older ones) unless one went out in the last minute. */
export async function mailVerificationLink(deps: MailDeps, user: User, meta: RequestMeta, interaction?: string): Promise<boolean> {
  if (user.status !== 'active' || user.emailVerifiedAt || !(await allowed(deps, 'verify', user, meta))) return false;
  const token = await deps.store.codes.issue('email_verify', user.id, deps.config.ttl.emailVerifyLink, {
    email: user.email, ...(interaction ? { interaction } : {}),
  });
  await deps.mailer.send(user.email, 'verify-email', { email: user.email, link: `${deps.config.issuer}/verify?token=${token}` }, languageOf(user));
  await deps.events.record({ type: 'email.verification_sent', userId: user.id, ...meta });
  return true;
}

/** Sends a new password-reset link (killing older ones) unless one went out in the last minute. */
export async function mailResetLink(deps: MailDeps, user: User, meta: RequestMeta, interaction?: string): Promise<boolean> {
  if (user.status !== 'active' || !(await allowed(deps, 'reset', user, meta))) return false;
  const token = await deps.store.codes.issue('password_reset', user.id, deps.config.ttl.passwordResetLink, {
    email: user.email, ...(interaction ? { interaction } : {}),
  });
  await deps.mailer.send(user.email, 'reset-password', { email: user.email, link: `${deps.config.issuer}/reset/confirm?token=${token}` }, languageOf(user));
  await deps.events.record({ type: 'password_reset.link_sent', userId: user.id, ...meta });
  return true;
}

/** Tells the owner of an address that someone tried to create a second account with it. */
export async function mailSignUpExisting(deps: MailDeps, user: User, meta: RequestMeta): Promise<boolean> {
  await deps.events.record({ type: 'sign_up.existing_email', userId: user.id, ...meta });
  if (user.status !== 'active' || !(await allowed(deps, 'signup-existing', user, meta))) return false;
  await deps.mailer.send(user.email, 'signup-existing', { email: user.email, link: `${deps.config.issuer}/reset` }, languageOf(user));
  return true;
}

export async function mailPasswordChanged(deps: MailDeps, user: User): Promise<void> {
  await deps.mailer.send(user.email, 'password-changed', { email: user.email, time: new Date() }, languageOf(user));
}
