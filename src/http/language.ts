/**
 * The language of each request, and the language picker at the foot of every page.
 *
 * Highest first:
 *   1. the person's own choice on the picker (the long-lived `lang` cookie);
 *   2. the `ui_locales` of the OpenID Connect request, once the code learns it (the interaction's parameters,
 *      a protocol error or logout page: `preferUiLocales` in i18n.ts);
 *   3. the browser's `Accept-Language`, with its q-values;
 *   4. English.
 * The issue that asked for this lists `ui_locales` first. The picker outranks it on purpose: an app sends the
 * same `ui_locales` with every request, so a picker that it overrides would do nothing when clicked, and the
 * person who clicked it knows better than the app which language they read. Keycloak does the same: its
 * `kc_locale` (the choice on its own pages) beats `ui_locales`.
 *
 * `languageScope` runs the rest of the request (our routes, the error pages, and oidc-provider's routes and the
 * pages it renders through our callbacks) inside the request's language holder; `render.t` and the templates'
 * `t` read it. POST /language sets the cookie, remembers the choice for a signed-in user (the language of
 * their mails), and sends the browser back to the page it came from: a local path only, never another site.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { DEFAULT_LANGUAGE, fromAcceptLanguage, matchLanguage, runInLanguage, supportedLanguages, type LanguageHolder } from '../i18n.ts';
import type { Store } from '../store/index.ts';
import { checkedForm, type Csrf } from './csrf.ts';
import { cookieName } from './signed-cookies.ts';

const COOKIE = 'lang';
const COOKIE_DAYS = 400; // the longest a browser keeps a cookie (RFC 6265bis)
/** Where the picker sends the browser when the page it came from is not a usable local path. */
export const LANGUAGE_DEFAULT_RETURN = '/account';
/** Longer than any of our pages' addresses (an /auth request carries at most 8 KB: oidc/post-methods.ts). */
const RETURN_MAX = 8 * 1024;

/**
 * A path on this site to send the browser back to: it starts with one "/" (not "//", which a browser reads
 * as another host, nor "/\", which some read the same way), has no control characters, and stays on the
 * issuer's origin. Anything else is undefined, never a redirect elsewhere.
 */
export function localPath(value: unknown, issuer: string): string | undefined {
  if (typeof value !== 'string' || value.length > RETURN_MAX || !/^\/(?![/\\])/.test(value)) return undefined;
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return undefined;
  const origin = new URL(issuer).origin;
  let url: URL;
  try {
    url = new URL(value, origin);
  } catch {
    return undefined;
  }
  if (url.origin !== origin) return undefined;
  // Normalising may make a path another host would be read from ("/.//evil", "/a/..//evil" become "//evil").
  return /^\/(?![/\\])/.test(url.pathname) ? `${url.pathname}${url.search}` : undefined;
}

/** A same-origin Referer as a local path with its query, else undefined. */
function refererPath(ctx: Context, issuer: string): string | undefined {
  const referer = ctx.get('referer');
  if (!referer) return undefined;
  try {
    const from = new URL(referer);
    return from.origin === new URL(issuer).origin ? localPath(`${from.pathname}${from.search}`, issuer) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The page the picker on this response returns to: this one (GET), else the page whose form was sent here. Its
 * path only: a page never writes its query back into itself (a crafted link's words stay out of the page); the
 * POST takes the query from the Referer of the same path (a mailed link's token survives a change of language).
 */
function pageToReturnTo(ctx: Context, issuer: string): string | undefined {
  const page = ctx.method === 'GET' || ctx.method === 'HEAD' ? localPath(ctx.originalUrl, issuer) : refererPath(ctx, issuer);
  return page?.split('?')[0];
}

/** The middleware that chooses the request's language (before anything that renders) and runs the rest inside it. */
export function languageScope(config: Config, forms: Csrf) {
  const cookie = cookieName(config, COOKIE, '/');
  return async function chooseLanguage(ctx: Context, next: Next) {
    const chosen = matchLanguage(ctx.cookies.get(cookie));
    const holder: LanguageHolder = {
      language: chosen ?? fromAcceptLanguage(ctx.get('accept-language')) ?? DEFAULT_LANGUAGE,
      chosen: !!chosen,
      picker: { csrf: () => forms.token(ctx), back: pageToReturnTo(ctx, config.issuer) },
    };
    // A page's words depend on these two headers: no cache may hand one person's language to another.
    if (!ctx.path.startsWith('/assets/')) {
      ctx.vary('Accept-Language');
      ctx.vary('Cookie');
    }
    return runInLanguage(holder, next);
  };
}

export interface LanguageDeps {
  config: Config;
  store: Store;
  csrf: Csrf;
  provider: () => Provider;
}

/** POST /language: the picker's form (CSRF-checked like every form). */
export function languageRoutes(deps: LanguageDeps): Router {
  const router = new Router();
  const cookie = cookieName(deps.config, COOKIE, '/');
  const tls = new URL(deps.config.issuer).protocol === 'https:';

  router.post('/language', checkedForm(deps.csrf), async (ctx) => {
    const form = ctx.state.form as Record<string, string>;
    const language = supportedLanguages().find((l) => l === form.language);
    if (!language) throw new AppError('language.invalid', 400, 'This language is not available. Choose one from the list.');
    // Signed in here (a live oidc-provider session): their mails follow the choice too.
    const session = await deps.provider().Session.get(ctx);
    if (session.accountId) await deps.store.users.setLanguage(session.accountId, language);
    if (tls) ctx.cookies.secure = true; // koa refuses Secure cookies on a request it thinks is plain http
    ctx.cookies.set(cookie, language, {
      httpOnly: true, sameSite: 'lax', secure: tls || ctx.secure, path: '/', maxAge: COOKIE_DAYS * 86400_000, overwrite: true,
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    const back = localPath(form.return, deps.config.issuer);
    const referer = refererPath(ctx, deps.config.issuer);
    ctx.redirect(back && referer?.split('?')[0] === back ? referer : (back ?? LANGUAGE_DEFAULT_RETURN));
  });
  return router;
}
