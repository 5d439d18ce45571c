/**
 * The console's clients section, read as a table (each route an ordered list of steps; ConsoleKit in
 * context.ts): the list, registering a client (its secret shown once), editing, disabling and enabling,
 * deleting after a confirmation, and rotating the secret after a fresh step-up (the new one shown once).
 * Every change is an operation of src/admin/operations/clients.ts: it checks the role and leaves the
 * audit row; this file only turns forms into its input and its answers into pages. Besides the kit's
 * steps, `refused` shows a 403 as this section's page, and `writersOnly` keeps a form page from a role
 * that may only read (the POST behind it is refused by the operation, and logged).
 */
import type Router from '@koa/router';
import { AppError } from '../errors.ts';
import {
  addClient, disableClient, enableClient, listClients, removeClient, rotateClientSecret, showClient as readClient, updateClient, type ClientView,
} from '../admin/operations/clients.ts';
import { timeMarkup } from '../http/render.ts';
import {
  CHOICES, clientChangesOf, clientFieldErrors, clientInputOf, GRANTS, newClientValues, storedClientValues, submittedValues,
  type ClientFormValues, type FieldErrors,
} from './clients-form.ts';
import type { ConsoleContext, ConsoleKit } from './context.ts';
import { may, refusedOn, writersOnly } from './kit.ts';

/** The grace periods the rotation form offers, in seconds (0: the old secret stops at once). */
const GRACE_CHOICES = [
  { seconds: 0, key: 'none' }, { seconds: 3600, key: 'hour' }, { seconds: 86400, key: 'day' },
  { seconds: 7 * 86400, key: 'week' }, { seconds: 30 * 86400, key: 'month' },
] as const;
const DEFAULT_GRACE = 86400;

const clientPath = (clientId: string) => `/admin/clients/${encodeURIComponent(clientId)}`;
const paramId = (ctx: ConsoleContext) => String((ctx as ConsoleContext & { params: Record<string, string> }).params.id ?? '');

/** Whether the signed-in roles may change these: which buttons show (the operations check again). */
const mayWrite = (ctx: ConsoleContext) => may(ctx.state.actor, 'clients.write');

export function clientRoutes(router: Router, kit: ConsoleKit): void {
  const refused = refusedOn(kit, 'admin/clients.njk');
  const secretPage = (ctx: ConsoleContext) => `${clientPath(paramId(ctx))}/secret`;
  router.get('/clients', kit.signedIn, refused, showClients(kit));
  router.get('/clients/new', kit.signedIn, refused, writersOnly(kit, 'clients.write', 'console.clients.readOnly'), showNewClient(kit));
  router.post('/clients/new', kit.form, kit.signedIn, refused, registerNewClient(kit));
  router.get('/clients/:id', kit.signedIn, refused, showClient(kit));
  router.post('/clients/:id', kit.form, kit.signedIn, refused, editClient(kit));
  router.post('/clients/:id/disable', kit.form, kit.signedIn, refused, switchClient(kit, 'disable'));
  router.post('/clients/:id/enable', kit.form, kit.signedIn, refused, switchClient(kit, 'enable'));
  router.get('/clients/:id/delete', kit.signedIn, refused, writersOnly(kit, 'clients.write', 'console.clients.readOnly'), confirmDelete(kit));
  router.post('/clients/:id/delete', kit.form, kit.signedIn, refused, deleteClient(kit));
  router.get('/clients/:id/secret', kit.signedIn, refused, writersOnly(kit, 'clients.write', 'console.clients.readOnly'), kit.stepUp('client-secret-rotate', secretPage), showRotateSecret(kit));
  router.post('/clients/:id/secret', kit.form, kit.signedIn, refused, kit.stepUp('client-secret-rotate', secretPage), rotateSecret(kit));
}

/** A refusal the operation means for the person at the form (a 4xx with its message), or undefined. */
function refusalOf(err: unknown): AppError | undefined {
  return err instanceof AppError && err.expose && err.status < 500 ? err : undefined;
}

/** One client, through its read operation (authorized and in the log); 404 when it is not there. */
async function findClient(kit: ConsoleKit, ctx: ConsoleContext): Promise<ClientView> {
  try {
    return await readClient(kit.deps, ctx.state.actor, paramId(ctx));
  } catch (err) {
    if (err instanceof AppError && err.status === 404) throw new AppError('console.client_not_found', 404, kit.deps.render.t('console.clients.notFound'));
    throw err;
  }
}

/** What the pages show of a client besides its form. */
function summaryOf(c: ClientView) {
  const m = c.metadata;
  return {
    clientId: c.clientId,
    name: c.name,
    public: m.token_endpoint_auth_method === 'none',
    authMethod: m.token_endpoint_auth_method,
    grantTypes: (m.grant_types as string[] | undefined) ?? [],
    redirectUris: (m.redirect_uris as string[] | undefined) ?? [],
    disabled: c.disabledAt !== null,
    disabledAt: c.disabledAt && timeMarkup(c.disabledAt),
    createdAt: timeMarkup(c.createdAt),
  };
}

function showClients(kit: ConsoleKit) {
  return async function clientsPage(ctx: ConsoleContext) {
    const clients = (await listClients(kit.deps, ctx.state.actor)).map(summaryOf);
    kit.page(ctx, 'admin/clients.njk', { clients, canWrite: mayWrite(ctx) });
  };
}

function formPage(kit: ConsoleKit, ctx: ConsoleContext, vars: { values: ClientFormValues; errors?: FieldErrors; client?: ReturnType<typeof summaryOf>; error?: string }, status = 200) {
  const { errors = {}, ...rest } = vars;
  kit.page(ctx, 'admin/clients-form.njk', { ...rest, errors, grants: GRANTS, choices: CHOICES, canWrite: mayWrite(ctx) }, status);
}

function showNewClient(kit: ConsoleKit) {
  return async function newClientPage(ctx: ConsoleContext) {
    formPage(kit, ctx, { values: newClientValues() });
  };
}

/** Shows a refused form again: each message next to its field, the rest above the form. */
function refusedForm(kit: ConsoleKit, ctx: ConsoleContext, refusal: AppError, values: ClientFormValues, client?: ReturnType<typeof summaryOf>) {
  const errors = refusal.code === 'client.invalid' ? clientFieldErrors(values) : {};
  const error = errors.form ?? (Object.keys(errors).length ? kit.deps.render.t('console.clients.fixBelow') : refusal.message);
  formPage(kit, ctx, { values, errors, error, ...(client ? { client } : {}) }, refusal.status);
}

function registerNewClient(kit: ConsoleKit) {
  return async function register(ctx: ConsoleContext) {
    const values = submittedValues(ctx.state.form);
    try {
      const created = await addClient(kit.deps, ctx.state.actor, clientInputOf(values));
      // The secret is in this answer only (never stored in the clear, never in a URL): no-store, no redirect.
      kit.page(ctx, 'admin/clients-secret.njk', { created: true, clientId: created.clientId, name: values.name, secret: created.clientSecret }, 201);
    } catch (err) {
      const refusal = refusalOf(err);
      if (!refusal || refusal.status === 403) throw err;
      refusedForm(kit, ctx, refusal, values);
    }
  };
}

function showClient(kit: ConsoleKit) {
  return async function clientPage(ctx: ConsoleContext) {
    const client = await findClient(kit, ctx);
    formPage(kit, ctx, { values: storedClientValues(client.name, client.metadata), client: summaryOf(client) });
  };
}

function editClient(kit: ConsoleKit) {
  return async function edit(ctx: ConsoleContext) {
    const client = await findClient(kit, ctx);
    const stored = storedClientValues(client.name, client.metadata);
    const values = submittedValues(ctx.state.form, stored);
    const changes = clientChangesOf(stored, values);
    // A form saved as it was changes nothing: said so, rather than an operation refused for want of a change.
    if (Object.keys(changes).length === 0) return kit.flash(ctx, clientPath(client.clientId), kit.deps.render.t('console.clients.unchanged'));
    try {
      await updateClient(kit.deps, ctx.state.actor, client.clientId, changes);
      kit.flash(ctx, clientPath(client.clientId), kit.deps.render.t('console.clients.saved', { name: values.name }));
    } catch (err) {
      const refusal = refusalOf(err);
      if (!refusal || refusal.status === 403) throw err;
      refusedForm(kit, ctx, refusal, values, summaryOf(client));
    }
  };
}

function switchClient(kit: ConsoleKit, to: 'disable' | 'enable') {
  const operation = to === 'disable' ? disableClient : enableClient;
  return async function switchState(ctx: ConsoleContext) {
    const id = paramId(ctx);
    try {
      const client = await operation(kit.deps, ctx.state.actor, id);
      kit.flash(ctx, clientPath(id), kit.deps.render.t(`console.clients.${to}d`, { name: client.name }));
    } catch (err) {
      // Already in that state (409): back to the client, saying so.
      const refusal = refusalOf(err);
      if (refusal?.status !== 409) throw err;
      kit.flash(ctx, clientPath(id), refusal.message);
    }
  };
}

function confirmDelete(kit: ConsoleKit) {
  return async function deletePage(ctx: ConsoleContext) {
    const client = await findClient(kit, ctx);
    kit.page(ctx, 'admin/clients-delete.njk', { client: summaryOf(client) });
  };
}

function deleteClient(kit: ConsoleKit) {
  return async function remove(ctx: ConsoleContext) {
    const client = await findClient(kit, ctx);
    await removeClient(kit.deps, ctx.state.actor, client.clientId);
    kit.flash(ctx, '/admin/clients', kit.deps.render.t('console.clients.deleted', { name: client.name }));
  };
}

function rotatePage(kit: ConsoleKit, ctx: ConsoleContext, client: ClientView, vars: { grace: number; error?: string }, status = 200) {
  const s = summaryOf(client);
  kit.page(ctx, 'admin/clients-rotate.njk', { client: s, graceChoices: GRACE_CHOICES, jwt: s.authMethod === 'client_secret_jwt', ...vars }, status);
}

function showRotateSecret(kit: ConsoleKit) {
  return async function rotateSecretPage(ctx: ConsoleContext) {
    const client = await findClient(kit, ctx);
    rotatePage(kit, ctx, client, { grace: client.metadata.token_endpoint_auth_method === 'client_secret_jwt' ? 0 : DEFAULT_GRACE });
  };
}

function rotateSecret(kit: ConsoleKit) {
  return async function rotate(ctx: ConsoleContext) {
    const client = await findClient(kit, ctx);
    const raw = ctx.state.form.grace ?? '';
    // Digits only; anything else reaches the operation as not-a-number, which it refuses with its own message.
    const graceSeconds = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
    try {
      const rotated = await rotateClientSecret(kit.deps, ctx.state.actor, client.clientId, { graceSeconds });
      kit.page(ctx, 'admin/clients-secret.njk', {
        created: false, clientId: client.clientId, name: client.name, secret: rotated.clientSecret,
        previousValidUntil: rotated.previousValidUntil && timeMarkup(rotated.previousValidUntil),
      });
    } catch (err) {
      const refusal = refusalOf(err);
      if (!refusal || refusal.status === 403) throw err;
      rotatePage(kit, ctx, client, { grace: Number.isNaN(graceSeconds) ? DEFAULT_GRACE : graceSeconds, error: refusal.message }, refusal.status);
    }
  };
}
