/**
 * The console's client form: its fields read into what the operations take (`ClientInput` to register,
 * `ClientChanges` to edit), the form's values for a client already registered, and a refused input's
 * messages placed next to the fields the registration schema names (oidc/clients.ts decides; nothing here
 * checks a value itself).
 */
import { AUTH_METHODS, CIBA_GRANT, CIBA_MODES, clientInput, GRANT_TYPES, ID_TOKEN_ALGS, inputOf, type ClientChanges, type ClientInput } from '../oidc/clients.ts';
import { LEVELS } from '../security/level.ts';

type GrantType = (typeof GRANT_TYPES)[number];

/** Each grant type's checkbox: `grant_<short>` in the form, `console.clients.grant.<short>` on the page. */
export const GRANTS: readonly { type: GrantType; short: string }[] = GRANT_TYPES.map((type) => ({
  type, short: type === CIBA_GRANT ? 'ciba' : type.replace(/^.*:/, ''),
}));

/** What the form's selects offer (the schema's own lists). */
export const CHOICES = { authMethods: AUTH_METHODS, idTokenAlgs: ID_TOKEN_ALGS, levels: LEVELS, cibaModes: CIBA_MODES } as const;

/** The form as it shows: text as typed, one URI a line, checkboxes as booleans. */
export interface ClientFormValues {
  name: string;
  redirectUris: string;
  postLogoutRedirectUris: string;
  grants: Record<string, boolean>;
  authMethod: string;
  idTokenAlg: string;
  minimumAcr: string;
  firstParty: boolean;
  logoUri: string;
  backchannelLogoutUri: string;
  backchannelLogoutSessionRequired: boolean;
  pkce: boolean;
  resourceServer: boolean;
  cibaMode: string;
  cibaNotificationEndpoint: string;
}

export type FieldErrors = Record<string, string>;

/** A form field's text, at most `max` characters (the schema refuses what is too long well before). */
const text = (form: Record<string, string>, name: string, max = 4000) => (form[name] ?? '').slice(0, max).trim();
const checked = (form: Record<string, string>, name: string) => form[name] === 'on';
const lines = (value: string) => value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);

/** A new client's form: a confidential web app with code + refresh, PKCE, and the consent page. */
export function newClientValues(): ClientFormValues {
  return {
    name: '', redirectUris: '', postLogoutRedirectUris: '',
    grants: Object.fromEntries(GRANTS.map((g) => [g.short, g.type === 'authorization_code' || g.type === 'refresh_token'])),
    authMethod: 'client_secret_basic', idTokenAlg: 'RS256', minimumAcr: '', firstParty: false, logoUri: '',
    backchannelLogoutUri: '', backchannelLogoutSessionRequired: true, pkce: true, resourceServer: false, cibaMode: '', cibaNotificationEndpoint: '',
  };
}

/** A registered client's form, from its stored metadata. */
export function storedClientValues(name: string, metadata: Record<string, unknown>): ClientFormValues {
  const input = inputOf(name, metadata);
  const grants = input.grantTypes ?? [];
  return {
    name: input.name,
    redirectUris: (input.redirectUris ?? []).join('\n'),
    postLogoutRedirectUris: (input.postLogoutRedirectUris ?? []).join('\n'),
    grants: Object.fromEntries(GRANTS.map((g) => [g.short, grants.includes(g.type)])),
    authMethod: input.authMethod ?? '', idTokenAlg: input.idTokenAlg ?? '', minimumAcr: input.minimumAcr ?? '',
    firstParty: input.firstParty ?? false, logoUri: input.logoUri ?? '', backchannelLogoutUri: input.backchannelLogoutUri ?? '',
    backchannelLogoutSessionRequired: input.backchannelLogoutSessionRequired ?? true, pkce: input.pkce ?? true,
    resourceServer: input.resourceServer ?? false, cibaMode: input.cibaMode ?? '', cibaNotificationEndpoint: input.cibaNotificationEndpoint ?? '',
  };
}

/**
 * The submitted form. `fixed`: an edit's settings the form cannot change (whether the client is public,
 * PKCE, resource server, CIBA delivery), kept as they are stored.
 */
export function submittedValues(form: Record<string, string>, fixed?: ClientFormValues): ClientFormValues {
  return {
    name: text(form, 'name', 400),
    redirectUris: text(form, 'redirectUris'),
    postLogoutRedirectUris: text(form, 'postLogoutRedirectUris'),
    grants: Object.fromEntries(GRANTS.map((g) => [g.short, checked(form, `grant_${g.short}`)])),
    authMethod: text(form, 'authMethod', 100),
    idTokenAlg: text(form, 'idTokenAlg', 100),
    minimumAcr: text(form, 'minimumAcr', 100),
    firstParty: checked(form, 'firstParty'),
    logoUri: text(form, 'logoUri', 2000),
    backchannelLogoutUri: text(form, 'backchannelLogoutUri', 2000),
    backchannelLogoutSessionRequired: checked(form, 'backchannelLogoutSessionRequired'),
    pkce: fixed ? fixed.pkce : checked(form, 'pkce'),
    resourceServer: fixed ? fixed.resourceServer : checked(form, 'resourceServer'),
    cibaMode: fixed ? fixed.cibaMode : text(form, 'cibaMode', 100),
    cibaNotificationEndpoint: fixed ? fixed.cibaNotificationEndpoint : text(form, 'cibaNotificationEndpoint', 2000),
  };
}

/** The values as a registration's input: left to the schema to accept or refuse, field by field. */
export function clientInputOf(v: ClientFormValues): ClientInput {
  return {
    name: v.name,
    redirectUris: lines(v.redirectUris),
    postLogoutRedirectUris: lines(v.postLogoutRedirectUris),
    grantTypes: GRANTS.filter((g) => v.grants[g.short]).map((g) => g.type),
    public: v.authMethod === 'none',
    authMethod: v.authMethod as ClientInput['authMethod'],
    idTokenAlg: v.idTokenAlg as ClientInput['idTokenAlg'],
    firstParty: v.firstParty,
    pkce: v.pkce,
    resourceServer: v.resourceServer,
    ...(v.minimumAcr ? { minimumAcr: v.minimumAcr as ClientInput['minimumAcr'] } : {}),
    ...(v.logoUri ? { logoUri: v.logoUri } : {}),
    ...(v.backchannelLogoutUri ? { backchannelLogoutUri: v.backchannelLogoutUri, backchannelLogoutSessionRequired: v.backchannelLogoutSessionRequired } : {}),
    ...(v.cibaMode ? { cibaMode: v.cibaMode as ClientInput['cibaMode'] } : {}),
    ...(v.cibaNotificationEndpoint ? { cibaNotificationEndpoint: v.cibaNotificationEndpoint } : {}),
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * An edit: only the settings that differ from the stored ones (so the log names what changed); an
 * optional setting emptied is taken away (null).
 */
export function clientChangesOf(stored: ClientFormValues, next: ClientFormValues): ClientChanges {
  const before = clientInputOf(stored);
  const after = clientInputOf(next);
  const changes: ClientChanges = {};
  for (const key of ['name', 'redirectUris', 'postLogoutRedirectUris', 'grantTypes', 'authMethod', 'idTokenAlg', 'firstParty'] as const) {
    if (!same(before[key], after[key])) Object.assign(changes, { [key]: after[key] });
  }
  for (const key of ['minimumAcr', 'logoUri', 'backchannelLogoutUri'] as const) {
    if (!same(before[key], after[key])) Object.assign(changes, { [key]: after[key] ?? null });
  }
  if (after.backchannelLogoutUri && !same(before.backchannelLogoutSessionRequired ?? true, after.backchannelLogoutSessionRequired)) {
    changes.backchannelLogoutSessionRequired = after.backchannelLogoutSessionRequired;
  }
  return changes;
}

/**
 * The registration schema's messages for these values: each under the field it names (the first one per
 * field), and those about several fields at once under `form`. Empty when the schema takes them (the
 * refusal then came from oidc-provider's own checks or the keys, and its message is the caller's to show).
 */
export function clientFieldErrors(v: ClientFormValues): FieldErrors {
  const parsed = clientInput.safeParse(clientInputOf(v));
  if (parsed.success) return {};
  const errors: FieldErrors = {};
  const general: string[] = [];
  for (const issue of parsed.error.issues) {
    const field = issue.path[0];
    if (field === undefined) general.push(issue.message);
    else errors[String(field)] ??= issue.message;
  }
  if (general.length) errors.form = general.join('; ');
  return errors;
}
