/** The pipeline step shared by every interaction route: load the interaction bound to this browser. */
import type { Next } from 'koa';
import { AppError } from '../errors.ts';
import { databaseUnavailable } from '../http/errors.ts';
import { preferUiLocales } from '../i18n.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { withRequestLookups } from '../oidc/adapter.ts';

/** Loads the interaction bound to this browser's cookie; a missing, expired or foreign one is a clear error. */
export function loadInteraction(deps: InteractionDeps, prompt?: 'login' | 'consent') {
  // The rest of the request runs with lookups of its own: the interaction comes with its sign-in in
  // progress and its user (state.ts takes them), in one statement.
  return (ctx: InteractionContext, next: Next) => withRequestLookups(() => loadIn(ctx, next));
  async function loadIn(ctx: InteractionContext, next: Next) {
    const provider = deps.provider();
    let details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      // The database away is not an expired sign-in: the error page answers 503 and the sign-in goes on after.
      if (databaseUnavailable(err)) throw err;
      throw new AppError('interaction.expired', 400,
        'This sign-in has expired or was started in another browser. Go back to the app and sign in again.');
    }
    if (details.uid !== ctx.params.uid) {
      throw new AppError('interaction.mismatch', 400, 'This sign-in page is out of date. Go back to the app and sign in again.');
    }
    if (prompt && details.prompt.name !== prompt) {
      throw new AppError('interaction.wrong_step', 400, 'This step of the sign-in is already done. Go back to the app and sign in again.');
    }
    const client = await provider.Client.find(String(details.params.client_id));
    if (!client) throw new AppError('interaction.client_gone', 400, 'The app you came from is no longer registered.');
    ctx.state.details = details;
    // The app's ui_locales: the page's language, unless the person chose one on the picker (http/language.ts).
    preferUiLocales(details.params.ui_locales);
    ctx.state.clientName = client.clientName ?? client.clientId;
    ctx.state.clientLogo = typeof client.logoUri === 'string' ? client.logoUri : null;
    ctx.state.clientMinimumAcr = client.metadata().minimum_acr as string | undefined;
    ctx.set('Cache-Control', 'no-store');
    await next();
  }
}

