/**
 * Discovery and the JWKS as bytes rendered once per provider instance. oidc-provider rebuilds these
 * documents on every request; they change only with the provider (a new key set builds a new provider:
 * oidc/current.ts), and with the request's origin (discovery names its endpoints on the origin the request
 * came to). So the first plain GET or HEAD of each document and origin is rendered by oidc-provider's own
 * route, in process, and the answer (status, headers, body) is kept with that provider instance and replayed.
 * Anything else (another method or path, a query, an Origin header, more answers than MAX_ANSWERS, an
 * answer other than 200) goes on to oidc-provider as before.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';

/** oidc-provider's fixed discovery routes; the JWKS path is read from the provider's own router. */
const DISCOVERY_PATHS = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'];
/** The request headers oidc-provider's answer depends on (besides the socket's TLS): the origin (Koa, `proxy: true`). */
const ORIGIN_HEADERS = ['host', 'x-forwarded-host', 'x-forwarded-proto'] as const;
/** Answers kept per provider: a few host names' worth, not one per Host header a client makes up. */
const MAX_ANSWERS = 24;

interface Rendered {
  status: number;
  /** As oidc-provider set them, names in lower case, ready to replay. */
  headers: readonly (readonly [string, string | string[]])[];
  body: Buffer;
}

/** A provider's rendered answers by path and origin; `undefined` is an answer not worth keeping (not a 200). */
interface ProviderDocuments {
  provider: Provider;
  paths: Set<string>;
  answers: Map<string, Promise<Rendered | undefined>>;
}

export function cachedDocuments(current: () => Provider) {
  const byProvider = new WeakMap<Provider, ProviderDocuments>();
  return async function documents(ctx: Context, next: Next): Promise<void> {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || ctx.get('origin')) return next();
    const docs = documentsOf(byProvider, current());
    if (!docs.paths.has(ctx.url)) return next();
    const answer = await answerFor(docs, ctx);
    if (!answer) return next();
    replay(ctx, answer);
  };
}

function documentsOf(byProvider: WeakMap<Provider, ProviderDocuments>, provider: Provider): ProviderDocuments {
  let docs = byProvider.get(provider);
  if (!docs) {
    docs = { provider, paths: new Set([...DISCOVERY_PATHS, provider.pathFor('jwks', { mountPath: '' })]), answers: new Map() };
    byProvider.set(provider, docs);
  }
  return docs;
}

const encrypted = (ctx: Context) => (ctx.req.socket as Socket & { encrypted?: boolean }).encrypted === true;

/** The path and what its origin is made of (the socket's TLS, the headers Koa reads it from), as one string. */
function keyOf(ctx: Context): string {
  let key = `${ctx.url}\n${encrypted(ctx)}`;
  for (const name of ORIGIN_HEADERS) {
    const value = ctx.req.headers[name];
    key += value === undefined ? '\n' : `\n=${String(value)}`;
  }
  return key;
}

/** The kept answer for this path and origin, rendered on first use; undefined when there is none to give. */
function answerFor(docs: ProviderDocuments, ctx: Context): Promise<Rendered | undefined> | undefined {
  const key = keyOf(ctx);
  let answer = docs.answers.get(key);
  if (!answer) {
    if (docs.answers.size >= MAX_ANSWERS) return undefined;
    // Deterministic for a provider and a key (no I/O): an answer that failed goes on to oidc-provider each time.
    answer = render(docs.provider, ctx).catch(() => undefined);
    docs.answers.set(key, answer);
  }
  return answer;
}

/** Asks oidc-provider's own route for the document, as a GET from this request's origin, and keeps what it wrote. */
async function render(provider: Provider, ctx: Context): Promise<Rendered | undefined> {
  const req = new IncomingMessage(Object.assign(new Socket(), { encrypted: encrypted(ctx) }));
  req.method = 'GET';
  req.url = ctx.url;
  req.headers = Object.fromEntries(ORIGIN_HEADERS.flatMap((name) => (ctx.req.headers[name] === undefined ? [] : [[name, ctx.req.headers[name]]])));
  const res = new ServerResponse(req);
  const chunks: Buffer[] = [];
  let streamed = false;
  res.write = (() => {
    streamed = true;
    return true;
  }) as typeof res.write;
  res.end = ((chunk?: unknown) => {
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    return res;
  }) as typeof res.end;
  await (provider.callback() as unknown as (req: IncomingMessage, res: ServerResponse) => Promise<void>)(req, res);
  if (res.statusCode !== 200 || streamed) return undefined;
  const headers = Object.entries(res.getHeaders())
    .filter((h): h is [string, string | number | string[]] => h[1] !== undefined)
    .map(([name, value]) => [name, typeof value === 'number' ? String(value) : value] as const);
  return { status: res.statusCode, headers, body: Buffer.concat(chunks) };
}

/**
 * Sets what oidc-provider set, the way it set it: `Vary` is added to (as its `ctx.vary`), the other headers
 * replace (as its `ctx.set`); Koa then writes the body (or, for HEAD, only its length), as it does for oidc-provider.
 */
function replay(ctx: Context, answer: Rendered): void {
  for (const [name, value] of answer.headers) {
    if (name === 'vary') ctx.vary(String(value));
    else ctx.set(name, value);
  }
  ctx.status = answer.status;
  ctx.body = answer.body;
}
