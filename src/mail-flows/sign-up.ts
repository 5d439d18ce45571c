/**
 * Sign-up: name (optional), email and password make an unverified account and mail it a verification link.
 * No enumeration: for an address that already has an account the page answers exactly the same (status,
 * body, cookies; the password is hashed either way) and the owner is mailed a notice instead.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { currentLanguage } from '../i18n.ts';
import { PRINTABLE } from '../text.ts';
import { passwordProblem } from '../factors/password.ts';
import { checkedForm } from '../http/csrf.ts';
import { echo, fieldErrors, pageRenderer, type FieldErrors } from '../http/page.ts';
import { DuplicateEmailError, type User } from '../store/users.ts';
import type { InteractionDeps } from '../interaction/context.ts';
import { inBackground, mailSignUpExisting, mailVerificationLink } from './mail-links.ts';
import { interactionUid, liveInteraction } from '../interaction/return-to.ts';
import { requestMeta } from '../http/request-meta.ts';

const NAME_MAX = 200;
const EMAIL_MAX = 320;

export const emailField = z.string('forms.emailRequired').trim().min(1, 'forms.emailRequired').max(EMAIL_MAX, 'forms.emailTooLong').pipe(z.email('forms.emailInvalid'));

const signUpForm = z.object({
  name: z.string().trim().max(NAME_MAX, 'signUp.nameTooLong').regex(PRINTABLE, 'signUp.nameInvalid').optional(),
  email: emailField,
  // Its length and content are passwordProblem's to judge (the body itself is size-limited).
  password: z.string('forms.passwordRequired').min(1, 'forms.passwordRequired'),
});

export function signUpRoutes(deps: InteractionDeps): Router {
  const router = new Router();
  const checked = checkedForm(deps.csrf);
  const page = pageRenderer(deps.render, deps.csrf);
  const { t } = deps.render;

  const enabled = (): void => {
    if (!deps.config.signUp.enabled) throw new AppError('sign_up.disabled', 404, 'Creating an account is not possible here.');
  };
  const form = (ctx: Context, vars: { interaction?: string; name?: string; email?: string; errors?: FieldErrors }, status = 200) =>
    page(ctx, 'mail-flows/sign-up.njk', vars, status);

  // From the sign-in page the link carries the interaction, so "Back to sign in" returns to it.
  router.get(['/signup', '/interaction/:uid/signup'], async (ctx) => {
    enabled();
    form(ctx, { interaction: await liveInteraction(deps, ctx.params.uid) });
  });

  router.post('/signup', (_ctx, next) => {
    enabled();
    return next();
  }, checked, async (ctx) => {
    const raw = ctx.state.form as Record<string, string>;
    const interaction = interactionUid(raw.interaction);
    const parsed = signUpForm.safeParse(raw);
    const errors = parsed.success ? {} : fieldErrors(parsed.error, t);
    if (!errors.password) {
      const problem = passwordProblem(raw.password ?? '', { email: raw.email, name: raw.name });
      if (problem) errors.password = t(problem.key, problem.vars);
    }
    if (!parsed.success || errors.password) {
      return form(ctx, { interaction, name: echo(raw.name, NAME_MAX), email: echo(raw.email, EMAIL_MAX), errors }, 400);
    }

    const { email, name, password } = parsed.data;
    const meta = requestMeta(ctx);
    // Hashed for new and existing addresses alike, so both take the same time.
    const passwordHash = await deps.hasher.hash(password);
    // Before the account is made: from a sign-in, the page and the account speak the app's ui_locales.
    const back = await liveInteraction(deps, interaction);
    let created: User | undefined;
    try {
      // Their mails will be in the language they signed up in (i18n.ts).
      created = await deps.store.users.create({ email, name: name || null, passwordHash, language: currentLanguage() });
    } catch (err) {
      if (!(err instanceof DuplicateEmailError)) throw err;
    }
    inBackground(deps.log, 'sign-up mail', async () => {
      if (created) {
        await deps.events.record({ type: 'user.created', userId: created.id, ...meta, details: { via: 'sign_up' } });
        await mailVerificationLink(deps, created, meta, interaction);
        return;
      }
      const owner = await deps.store.users.findByEmail(email);
      if (owner) await mailSignUpExisting(deps, owner, meta);
    });
    page(ctx, 'mail-flows/sign-up-sent.njk', { interaction: back, email });
  });
  return router;
}
