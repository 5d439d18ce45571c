/** The interaction pipeline, read as a table: each route is an ordered list of named steps. */
import Router from '@koa/router';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { confirm, renderConsent } from './consent.ts';
import { endWithError } from './grant.ts';
import { checkedForm } from '../http/csrf.ts';
import { loadInteraction } from './load.ts';
import { answerPasskeyOffer, showOfferAgain } from './passkey-offer.ts';
import { continueAfterRecovery, showRecoveryLeftAgain } from './recovery-notice.ts';
import { passkeyOptions, passkeySignInStep, renderLogin, signIn } from './sign-in.ts';
import { giveUp, pendingStatus, resend, showMethods, showSecondStep, verifySecondStep } from './second-step.ts';
import { isStepUp, startStepUp } from './step-up.ts';
import { findProgress } from './state.ts';

export function interactionRoutes(deps: InteractionDeps): Router {
  const router = new Router({ prefix: '/interaction/:uid' });
  const form = checkedForm(deps.csrf);

  router.get('/', loadInteraction(deps), async (ctx) => {
    const c = ctx as InteractionContext;
    if (c.state.details.prompt.name === 'login') {
      // A second step in progress continues; a session whose level is too low steps up; else the password.
      const progress = await findProgress(deps, c.state.details.uid);
      if (progress?.complete && ((await showRecoveryLeftAgain(deps, c)) || (await showOfferAgain(deps, c)))) return;
      if (progress && !progress.complete) return c.redirect(`/interaction/${c.params.uid}/verify`);
      if (isStepUp(c) && (await startStepUp(deps, c))) return;
      return renderLogin(deps, c);
    }
    if (c.state.details.prompt.name === 'consent') return renderConsent(deps, c);
    throw new Error(`unknown prompt ${c.state.details.prompt.name}`);
  });
  router.post('/login', form, loadInteraction(deps, 'login'), signIn(deps));
  router.get('/verify', loadInteraction(deps, 'login'), showSecondStep(deps));
  router.post('/verify', form, loadInteraction(deps, 'login'), verifySecondStep(deps));
  router.get('/verify/methods', loadInteraction(deps, 'login'), showMethods(deps));
  router.get('/verify/status', loadInteraction(deps, 'login'), pendingStatus(deps));
  router.post('/verify/resend', form, loadInteraction(deps, 'login'), resend(deps));
  router.post('/unmet', form, loadInteraction(deps, 'login'), giveUp(deps));
  router.post('/passkey/options', form, loadInteraction(deps, 'login'), passkeyOptions(deps));
  router.post('/passkey', form, loadInteraction(deps, 'login'), passkeySignInStep(deps));
  router.post('/passkey-offer', form, loadInteraction(deps, 'login'), answerPasskeyOffer(deps));
  router.post('/continue', form, loadInteraction(deps, 'login'), continueAfterRecovery(deps));
  router.post('/confirm', form, loadInteraction(deps, 'consent'), confirm(deps));
  router.post('/abort', form, loadInteraction(deps), async (ctx) => {
    const c = ctx as InteractionContext;
    const description = c.state.details.prompt.name === 'consent' ? 'the user denied access' : 'the user cancelled the sign-in';
    await deps.store.progress.delete(c.state.details.uid);
    await endWithError(c, deps.provider(), 'access_denied', description);
  });
  return router;
}
