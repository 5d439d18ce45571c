/**
 * Composes the Koa app in one readable list: http/* (the request's language first) -> health -> assets ->
 * the language picker -> interaction, setup, sign-up,
 * email verification, password reset, account page -> provider.
 * Anything our routes do not answer goes to oidc-provider (discovery, /auth, /token, /jwks, …).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Koa from 'koa';
import type Provider from 'oidc-provider';
import { accountRoutes } from './account/routes.ts';
import { adminApiRoutes } from './admin/api/routes.ts';
import { consoleRoutes } from './console/routes.ts';
import { setupRoutes } from './admin/setup.ts';
import { assets } from './http/assets.ts';
import { refuseNulInUrl } from './http/body.ts';
import { csrf } from './http/csrf.ts';
import { errorHandler } from './http/errors.ts';
import { securityHeaders } from './http/headers.ts';
import { health } from './http/health.ts';
import { languageRoutes, languageScope } from './http/language.ts';
import { trustProxies } from './http/proxy.ts';
import { createRenderer } from './http/render.ts';
import { requestLog } from './http/request-log.ts';
import { resetRoutes } from './mail-flows/reset.ts';
import { inviteRoutes } from './mail-flows/invite.ts';
import { notMeRoutes } from './mail-flows/not-me.ts';
import { interactionRoutes } from './interaction/routes.ts';
import { recoverTwoStepRoutes } from './mail-flows/recover-two-step.ts';
import { recoverEnrolRoutes } from './mail-flows/recover-two-step-enrol.ts';
import { signUpRoutes } from './mail-flows/sign-up.ts';
import { verifyEmailRoutes } from './mail-flows/verify-email.ts';
import { createProviderHolder, type ProviderHolder } from './oidc/current.ts';
import { settleCibaPrompts } from './oidc/ciba.ts';
import { endSignInsDeniedOnThePhone } from './interaction/denied.ts';
import type { Services } from './services.ts';
import { postToGet } from './oidc/post-methods.ts';
import { cachedDocuments } from './oidc/documents.ts';
import { appFiles } from './push/app-files.ts';
import { appApi } from './push/api.ts';
import { httpMetrics, metricsOnMainPort } from './metrics/http.ts';
import { observeProvider } from './metrics/provider.ts';

export interface App {
  koa: Koa;
  providers: ProviderHolder;
}

export async function createApp(services: Services, opts: { shuttingDown?: () => boolean } = {}): Promise<App> {
  const { config, log, store } = services;
  const render = createRenderer(config);
  const forms = csrf(config);
  const providers = await createProviderHolder({ config, store, render, log, push: services.push, geoip: services.geoip });
  // A phone's answer to a CIBA prompt goes to this app's current provider (oidc/ciba.ts).
  settleCibaPrompts(store, { provider: () => providers.current(), config, log });
  endSignInsDeniedOnThePhone();
  const deps = { ...services, render, csrf: forms, provider: () => providers.current() };

  // proxy: true is safe because trustProxies() deletes X-Forwarded-* unless the peer is a trusted proxy.
  const koa = new Koa({ proxy: true });
  koa.silent = true;
  koa.on('error', (err: unknown) => log.error({ err }, 'unhandled request error'));

  const interaction = interactionRoutes(deps);
  const setup = setupRoutes(services, render, forms);
  const callbacks = new WeakMap<Provider, (req: IncomingMessage, res: ServerResponse) => Promise<void>>();

  // Every request counted and timed (metrics/http.ts), only where a scraper can read the numbers.
  if (config.metrics.port !== undefined || config.metrics.token !== undefined) koa.use(httpMetrics());
  koa
    .use(requestLog(log))
    // Before anything renders (error pages included) and before oidc-provider's routes: see http/language.ts.
    .use(languageScope(config, forms))
    .use(errorHandler(render))
    .use(securityHeaders(config))
    .use(trustProxies(config))
    // The admin API refuses a NUL in its own input, as problem details and audited (admin/api/pipeline.ts).
    .use(refuseNulInUrl('/admin/api/'))
    .use(health(services.database, opts.shuttingDown ?? (() => false)))
    // /metrics on this port only behind metrics.token; without one it is not answered here (404).
    .use(metricsOnMainPort(config.metrics.token))
    // Discovery and the JWKS as oidc-provider renders them, kept per provider (oidc/documents.ts): no route below answers them.
    .use(cachedDocuments(() => providers.current()))
    .use(assets(config))
    .use(appFiles())
    .use(appApi(deps))
    .use(languageRoutes(deps).routes())
    .use(interaction.routes())
    .use(interaction.allowedMethods())
    .use(setup.routes())
    .use(signUpRoutes(deps).routes())
    .use(verifyEmailRoutes(deps).routes())
    .use(resetRoutes(deps).routes())
    .use(inviteRoutes(deps).routes())
    .use(notMeRoutes(deps).routes())
    .use(recoverTwoStepRoutes(deps).routes())
    .use(recoverEnrolRoutes(deps).routes())
    .use(accountRoutes(deps).routes())
    // The REST API before the console: both live under /admin.
    .use(adminApiRoutes(deps).routes())
    .use(consoleRoutes(deps).routes())
    .use(postToGet(['/auth', '/session/end']))
    .use(async function protocol(ctx) {
      const provider = providers.current();
      let handle = callbacks.get(provider);
      if (!handle) {
        observeProvider(provider);
        handle = provider.callback() as unknown as (req: IncomingMessage, res: ServerResponse) => Promise<void>;
        callbacks.set(provider, handle);
      }
      ctx.respond = false;
      await handle(ctx.req, ctx.res);
    });
  return { koa, providers };
}
