/**
 * The only reader of the environment and of config/*.yaml. Everything else receives a `Config`.
 *
 * Order: config/default.yaml, then the file named by LATCHKEY_CONFIG, then LATCHKEY_* variables.
 * The result is validated (zod), frozen and typed; a bad value throws a ConfigError naming the key.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseCidr } from './http/ip.ts';
import { projectRoot } from './paths.ts';

/** Values shipped in config/default.yaml that production refuses to start with. */
export const EXAMPLE_SECRETS = Object.freeze([
  'dev-only-encryption-key-change-me-in-production',
  'dev-only-cookie-key-change-me-in-production',
]);

const duration = z.number().int().positive();
const secret = z.string().min(32, 'must be at least 32 characters');

const url = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}, 'must be an absolute http(s) URL');

const cidrOrIp = z.string().refine((v) => parseCidr(v) !== undefined, 'must be an IP address or CIDR range');

export const configSchema = z.strictObject({
  env: z.enum(['development', 'production', 'test']),
  // zod runs every refinement even after one failed: an unparsable value is reported by `url` above.
  issuer: url.refine((v) => !URL.canParse(v) || (!new URL(v).search && !new URL(v).hash), 'must not have a query or fragment'),
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  server: z.strictObject({
    /** Processes serving the one port (node:cluster, src/workers.ts): 1 to 64, or auto (one per core); more than 1 needs PostgreSQL. */
    workers: z.custom<number | 'auto'>((v) => v === 'auto' || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 64), 'must be a whole number from 1 to 64, or auto'),
  }),
  productName: z.string().min(1).max(60),
  branding: z.strictObject({
    /** An https:// image URL (or a path under /assets/) shown above every page. */
    logoUrl: z.string().refine((v) => v.startsWith('/assets/') || /^https:\/\/[^\s"'<>]+$/.test(v), 'must be an https:// URL or a path under /assets/').optional(),
    /** The colour of buttons and links, as #rrggbb. */
    primaryColor: z.string().regex(/^#[0-9a-fA-F]{6}$/, 'must be a colour like #2f5bd3'),
  }),
  database: z.strictObject({
    /** PostgreSQL connection string; when absent the embedded database under dataDir is used. */
    url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
    dataDir: z.string().min(1),
    poolMax: z.number().int().min(1).max(100),
    /** The server's bound on one statement (PostgreSQL's statement_timeout); a statement cut off answers 503. */
    statementTimeoutSeconds: z.number().int().min(1).max(300),
  }),
  secrets: z.strictObject({
    /** Encrypts TOTP seeds, private signing keys and client secrets at rest (AES-256-GCM). */
    encryptionKey: secret,
    /** Signs cookies; the first signs, all verify (rotate by prepending). */
    cookieKeys: z.array(secret).min(1),
  }),
  mail: z.strictObject({
    /** The From header of every email. */
    from: z.string().min(3),
    /** smtp://user:password@host:587 or smtps://…:465; unset in development = mail goes to the log. */
    smtpUrl: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
    /** Link mails (sign-up, verification, reset) asked for from one IP address in an hour, to any accounts. */
    linksPerIpPerHour: z.number().int().min(1).max(10000),
  }),
  proxy: z.strictObject({
    /** Peers whose X-Forwarded-For / -Proto / -Host are believed. Everyone else's are dropped. */
    trusted: z.array(cidrOrIp),
    /** Production with an http:// issuer is allowed only when TLS is terminated by a proxy in front. */
    tlsTerminated: z.boolean(),
  }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  }),
  argon2: z.strictObject({
    memoryCost: z.number().int().min(19456, 'must be at least 19456 KiB (OWASP minimum)'),
    timeCost: z.number().int().min(2, 'must be at least 2 (OWASP minimum)'),
    parallelism: z.number().int().min(1).max(16),
    /** Hashes that may run at once; the rest wait, so hashing never starves token signing. */
    concurrency: z.number().int().min(1).max(64),
  }),
  throttle: z.strictObject({
    /** Failures per account before delays start. */
    freeFailures: z.number().int().min(1).max(20),
    /** Longest delay between attempts, in seconds (delays double from 1 s). */
    maxDelaySeconds: z.number().int().min(1).max(3600),
    /** Consecutive failures after which the account is locked until a password reset by email. */
    lockAfter: z.number().int().min(10).max(100, 'must be at most 100 (README, "Security notes": the owner is never locked out for good)'),
    /** How long an account's failures are remembered without a new one. */
    accountWindowSeconds: duration,
    /** Failures from one IP address within ipWindowSeconds before that address must wait. */
    ipMaxFailures: z.number().int().min(5),
    ipWindowSeconds: duration,
  }),
  ttl: z.strictObject({
    accessToken: duration,
    authorizationCode: duration.max(600),
    idToken: duration,
    refreshToken: duration,
    session: duration,
    interaction: duration,
    grant: duration,
    deviceCode: duration,
    clientCredentials: duration,
    /** Lifetime of an email-verification link. */
    emailVerifyLink: duration.max(604800, 'must be at most 604800 (7 days)'),
    /** Lifetime of a password-reset link: short-lived (README, "Accounts"). */
    passwordResetLink: duration.max(7200, 'must be at most 7200 (2 hours): reset links are short-lived'),
  }),
  keys: z.strictObject({
    algorithms: z.array(z.enum(['RS256', 'ES256', 'EdDSA'])).min(1),
    /** How often an instance looks for rotated keys in the database. */
    refreshSeconds: duration,
  }),
  /** Resource servers (RFC 8707) for which JWT access tokens are issued. */
  resources: z.record(
    url,
    z.strictObject({
      scope: z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, 'must be space-separated scope tokens'),
      accessTokenTTL: duration.optional(),
      jwtAlg: z.enum(['RS256', 'ES256', 'EdDSA']).optional(),
    }),
  ),
  backchannelLogout: z.strictObject({
    /**
     * Deliver back-channel logout tokens to loopback and private-network addresses (apps on an internal network).
     * Off: oidc-provider refuses to connect to special-use addresses (SSRF protection) and those apps get nothing.
     */
    allowPrivateNetwork: z.boolean(),
  }),
  signUp: z.strictObject({
    /** Anyone may create an account on the sign-in page (unverified until the emailed link is opened). */
    enabled: z.boolean(),
  }),
  account: z.strictObject({
    /** Changing the email, the password or two-step verification needs a sign-in at most this many seconds old. */
    recentAuthSeconds: z.number().int().min(1).max(86400, 'must be at most 86400 (a day)'),
  }),
  console: z.strictObject({
    /** The admin console's session ends after this long without a request. */
    idleSeconds: z.number().int().min(60).max(86400),
    /** …and this long after its sign-in, whatever happens. */
    absoluteSeconds: z.number().int().min(300).max(7 * 86400),
    /** A sensitive action (a two-step reset, deleting a user, granting a role, keys, a client secret) needs a sign-in at most this old. */
    stepUpSeconds: z.number().int().min(30).max(3600),
  }).refine((c) => c.idleSeconds <= c.absoluteSeconds, { message: 'idleSeconds must not exceed absoluteSeconds', path: ['idleSeconds'] }),
  adminApi: z.strictObject({
    /** Lifetime of an access token for the admin REST API (resource <issuer>/admin/api). */
    tokenSeconds: z.number().int().min(30).max(3600),
  }),
  twoStep: z.strictObject({
    /** How long a sign-in may wait on its second step, and an enrolment on its confirmation. */
    stepTtlSeconds: z.number().int().min(60).max(3600),
    totp: z.strictObject({
      /** Digits of a code: 6 (what every authenticator app shows by default) to 8. */
      digits: z.number().int().min(6).max(8),
      /** Time steps before the current one that are still accepted (clock drift, typing time). */
      pastSteps: z.number().int().min(0).max(2),
      /** Time steps after the current one that are accepted (a phone whose clock runs ahead). */
      futureSteps: z.number().int().min(0).max(1),
    }),
    sms: z.strictObject({
      /** log: written to the log (development only); webhook: a signed JSON POST; twilio: Twilio's REST API. */
      provider: z.enum(['log', 'webhook', 'twilio']),
      /** A code works this long (README, "Two-step verification": 5 minutes, never more than 10). */
      codeTtlSeconds: z.number().int().min(60).max(600, 'must be at most 600 (10 minutes; README, "Two-step verification")'),
      /** At least this long between two codes to one account. */
      resendIntervalSeconds: z.number().int().min(10).max(600),
      /** At most this many codes per account and hour. */
      maxPerHour: z.number().int().min(1).max(30),
      /** How long to wait for the provider. */
      timeoutMs: z.number().int().min(100).max(30000),
      webhook: z.strictObject({
        url: url.optional(),
        /** Signs each POST (X-Latchkey-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">). */
        secret: secret.optional(),
      }),
      twilio: z.strictObject({
        accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be a Twilio account SID (AC…)').optional(),
        authToken: z.string().min(16).optional(),
        /** A Twilio phone number in E.164, or use messagingServiceSid. */
        from: z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 phone number like +15551234567').optional(),
        messagingServiceSid: z.string().regex(/^MG[0-9a-fA-F]{32}$/, 'must be a messaging service SID (MG…)').optional(),
        baseUrl: url,
      }),
    }).superRefine((sms, ctx) => {
      if (sms.provider === 'webhook' && (!sms.webhook.url || !sms.webhook.secret)) {
        ctx.addIssue({ code: 'custom', path: ['webhook'], message: 'the webhook provider needs webhook.url and webhook.secret' });
      }
      if (sms.provider === 'twilio' && (!sms.twilio.accountSid || !sms.twilio.authToken || !(sms.twilio.from || sms.twilio.messagingServiceSid))) {
        ctx.addIssue({ code: 'custom', path: ['twilio'], message: 'the twilio provider needs accountSid, authToken and from or messagingServiceSid' });
      }
    }),
    push: z.strictObject({
      /** Digits of the number typed in the app (README, "Mobile app prompts": 3 as Duo's Verified Push; 6 meets NIST rev 4's 20 bits). */
      numberDigits: z.number().int().min(2).max(8),
      /** A prompt waits this long for its answer (at most 600). */
      promptTtlSeconds: z.number().int().min(30).max(600, 'must be at most 600 (10 minutes; README, "Mobile app prompts")'),
      /** At least this long between two prompts to one account ("Send again"); it doubles after each prompt left unanswered or denied. */
      resendIntervalSeconds: z.number().int().min(10).max(600),
      /** At most this many prompts per account in 15 minutes, and in a day. */
      maxPer15Minutes: z.number().int().min(1).max(30),
      maxPerDay: z.number().int().min(1).max(200),
      /** At most this many prompts from one IP address in 15 minutes (to any account). */
      maxPerIpPer15Minutes: z.number().int().min(1).max(1000),
      /** "This wasn't me" in the app pauses prompts to the account this long. */
      pauseAfterNotMeSeconds: z.number().int().min(60).max(86400),
      /** How long to wait for a push service. */
      timeoutMs: z.number().int().min(100).max(30000),
      /** The VAPID contact (RFC 8292 `sub`): a mailto: or https: URL; default: mailto: the mail sender. */
      contact: z.string().regex(/^(mailto:\S+@\S+|https:\/\/\S+)$/, 'must be a mailto: or https: URL').optional(),
      /**
       * Tests only: accept push endpoints over http and on loopback or private addresses. Production
       * endpoints are https on public addresses (a browser's push service).
       */
      allowInsecureEndpoints: z.boolean(),
    }),
    recoveryCodes: z.strictObject({
      /** Codes in a set (README, "Two-step verification": at least 10). */
      count: z.number().int().min(10, 'must be at least 10 (README, "Two-step verification")').max(20),
    }),
  }),
  webauthn: z.strictObject({
    /** The WebAuthn relying-party id: the issuer's host name (the default) or a parent domain of it. */
    rpId: z.string().regex(/^[a-z0-9.-]+$/i, 'must be a host name').optional(),
    /** Origins a passkey ceremony may come from (a deployment with several host names); default: the issuer's. */
    origins: z.array(url).min(1).optional(),
    /** A passkey challenge must be answered within this many seconds. */
    challengeTtlSeconds: z.number().int().min(30).max(600),
    /** Public-key algorithms accepted for new passkeys (COSE: EdDSA -8, ES256 -7, RS256 -257). */
    algorithms: z.array(z.enum(['EdDSA', 'ES256', 'RS256'])).min(1),
    /** After a password sign-in on a capable device, offer to add a passkey. */
    offerAfterSignIn: z.boolean(),
  }),
  risk: z.strictObject({
    /** A sign-in after this many days without one counts as risky. */
    inactivityDays: z.number().int().min(1).max(3650),
    /** Failed attempts within this many hours (since the last success) make a sign-in risky. */
    failureWindowHours: z.number().int().min(1).max(720),
    /** Optional IP-to-place CSV (DB-IP "lite" format) for the new-country and impossible-travel rules. */
    geoipFile: z.string().min(1).optional(),
    /** Faster than this between two sign-ins' places is impossible travel. */
    impossibleTravelKmh: z.number().int().min(100).max(5000),
    /** Mail the user when a sign-in completes on a device they never used before. */
    newDeviceAlert: z.boolean(),
  }),
  audit: z.strictObject({
    /** Audit log rows older than this are purged (README, "Audit log"); the chain stays verifiable from its anchor. */
    retentionDays: z.number().int().min(1).max(36500),
  }),
  metrics: z.strictObject({
    /** A separate listener for Prometheus text at /metrics (0: any free port); unset = none. With workers, the primary serves their sum. */
    port: z.number().int().min(0).max(65535).optional(),
    /** Its address: loopback by default, so only this machine (or a proxy you choose) can scrape it. */
    host: z.string().min(1),
    /** /metrics on the main port too, for a scraper sending `Authorization: Bearer <token>`; unset = not on the main port. */
    token: secret.regex(/^[\x21-\x7e]{1,512}$/, 'must be printable ASCII without spaces, at most 512 characters (it travels in an Authorization header)').optional(),
  }),
  purgeIntervalSeconds: duration,
  setupLinkTtlSeconds: duration,
});

export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

/** LATCHKEY_* variables and where they land. */
type EnvType = 'string' | 'number' | 'number-or-auto' | 'list' | 'boolean';

const ENV_KEYS: readonly [string, string, EnvType][] = [
  ['LATCHKEY_ENV', 'env', 'string'],
  ['LATCHKEY_ISSUER', 'issuer', 'string'],
  ['LATCHKEY_HOST', 'host', 'string'],
  ['LATCHKEY_PORT', 'port', 'number'],
  ['LATCHKEY_WORKERS', 'server.workers', 'number-or-auto'],
  ['LATCHKEY_PRODUCT_NAME', 'productName', 'string'],
  ['LATCHKEY_LOGO_URL', 'branding.logoUrl', 'string'],
  ['LATCHKEY_PRIMARY_COLOR', 'branding.primaryColor', 'string'],
  ['LATCHKEY_DATABASE_URL', 'database.url', 'string'],
  ['LATCHKEY_DATA_DIR', 'database.dataDir', 'string'],
  ['LATCHKEY_DATABASE_POOL_MAX', 'database.poolMax', 'number'],
  ['LATCHKEY_DATABASE_STATEMENT_TIMEOUT_SECONDS', 'database.statementTimeoutSeconds', 'number'],
  ['LATCHKEY_ENCRYPTION_KEY', 'secrets.encryptionKey', 'string'],
  ['LATCHKEY_COOKIE_KEYS', 'secrets.cookieKeys', 'list'],
  ['LATCHKEY_TRUSTED_PROXIES', 'proxy.trusted', 'list'],
  ['LATCHKEY_SMTP_URL', 'mail.smtpUrl', 'string'],
  ['LATCHKEY_MAIL_FROM', 'mail.from', 'string'],
  ['LATCHKEY_MAIL_LINKS_PER_IP_PER_HOUR', 'mail.linksPerIpPerHour', 'number'],
  ['LATCHKEY_TLS_TERMINATED_BY_PROXY', 'proxy.tlsTerminated', 'boolean'],
  ['LATCHKEY_LOG_LEVEL', 'log.level', 'string'],
  ['LATCHKEY_SIGN_UP_ENABLED', 'signUp.enabled', 'boolean'],
  ['LATCHKEY_SMS_PROVIDER', 'twoStep.sms.provider', 'string'],
  ['LATCHKEY_PUSH_NUMBER_DIGITS', 'twoStep.push.numberDigits', 'number'],
  ['LATCHKEY_PUSH_CONTACT', 'twoStep.push.contact', 'string'],
  ['LATCHKEY_SMS_WEBHOOK_URL', 'twoStep.sms.webhook.url', 'string'],
  ['LATCHKEY_SMS_WEBHOOK_SECRET', 'twoStep.sms.webhook.secret', 'string'],
  ['LATCHKEY_TWILIO_ACCOUNT_SID', 'twoStep.sms.twilio.accountSid', 'string'],
  ['LATCHKEY_TWILIO_AUTH_TOKEN', 'twoStep.sms.twilio.authToken', 'string'],
  ['LATCHKEY_TWILIO_FROM', 'twoStep.sms.twilio.from', 'string'],
  ['LATCHKEY_TWILIO_MESSAGING_SERVICE_SID', 'twoStep.sms.twilio.messagingServiceSid', 'string'],
  ['LATCHKEY_GEOIP_FILE', 'risk.geoipFile', 'string'],
  ['LATCHKEY_WEBAUTHN_RP_ID', 'webauthn.rpId', 'string'],
  ['LATCHKEY_WEBAUTHN_ORIGINS', 'webauthn.origins', 'list'],
  ['LATCHKEY_AUDIT_RETENTION_DAYS', 'audit.retentionDays', 'number'],
  ['LATCHKEY_CONSOLE_IDLE_SECONDS', 'console.idleSeconds', 'number'],
  ['LATCHKEY_CONSOLE_ABSOLUTE_SECONDS', 'console.absoluteSeconds', 'number'],
  ['LATCHKEY_CONSOLE_STEP_UP_SECONDS', 'console.stepUpSeconds', 'number'],
  ['LATCHKEY_METRICS_PORT', 'metrics.port', 'number'],
  ['LATCHKEY_METRICS_HOST', 'metrics.host', 'string'],
  ['LATCHKEY_METRICS_TOKEN', 'metrics.token', 'string'],
];

export interface LoadOptions {
  env?: Env;
  /** Deep-merged over the files and under the environment; used by tests and the benchmark. */
  overrides?: Record<string, unknown>;
}

export function loadConfig({ env = process.env, overrides }: LoadOptions = {}): Config {
  let raw = readYaml(path.join(projectRoot, 'config', 'default.yaml'));
  const extra = env.LATCHKEY_CONFIG;
  if (extra) raw = merge(raw, readYaml(path.resolve(extra)));
  if (overrides) raw = merge(raw, overrides);
  for (const [name, key, type] of ENV_KEYS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, key, coerce(name, value, type));
  }
  // With no issuer given, the provider is its own issuer on localhost at the configured port.
  if (raw.issuer === undefined || raw.issuer === null) raw.issuer = `http://localhost:${typeof raw.port === 'number' ? raw.port : 3000}`;
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  config.database.dataDir = path.resolve(config.database.dataDir);
  config.issuer = config.issuer.replace(/\/+$/, '');
  if (config.risk.geoipFile) config.risk.geoipFile = path.resolve(config.risk.geoipFile);
  settleWebauthn(config);
  refuseEmbeddedWorkers(config);
  if (config.env === 'production') assertProductionReady(config);
  return deepFreeze(config);
}

/**
 * The passkey relying party: by default the issuer's host and origin. An rpId must be the host of every
 * origin or a parent domain of it (WebAuthn's rule), and origins are compared as origins (no path).
 */
function settleWebauthn(config: z.infer<typeof configSchema>): void {
  const issuer = new URL(config.issuer);
  const w = config.webauthn;
  w.origins = (w.origins ?? [issuer.origin]).map((o) => new URL(o).origin);
  w.rpId = (w.rpId ?? issuer.hostname).toLowerCase();
  const rpId = w.rpId;
  const bad = w.origins.filter((o) => {
    const host = new URL(o).hostname;
    return host !== rpId && !host.endsWith(`.${rpId}`);
  });
  if (bad.length) throw new ConfigError(`invalid configuration:\n  webauthn.rpId: ${rpId} is not the host name (or a parent domain) of ${bad.join(', ')}`);
}

/**
 * The embedded database belongs to one process, so several workers need PostgreSQL. An explicit number is
 * refused here; `auto` runs one process on the embedded database (main.ts says so in the log).
 */
function refuseEmbeddedWorkers(config: z.infer<typeof configSchema>): void {
  const { workers } = config.server;
  if (workers === 'auto' || workers === 1 || config.database.url) return;
  throw new ConfigError(`invalid configuration:\n  server.workers: ${workers} worker processes need PostgreSQL (set LATCHKEY_DATABASE_URL); the embedded database belongs to one process (set LATCHKEY_WORKERS=1)`);
}

function assertProductionReady(config: z.infer<typeof configSchema>): void {
  const problems: string[] = [];
  if (isExampleSecret(config.secrets.encryptionKey)) {
    problems.push('secrets.encryptionKey: still the shipped example value (set LATCHKEY_ENCRYPTION_KEY)');
  }
  if (config.secrets.cookieKeys.some(isExampleSecret)) {
    problems.push('secrets.cookieKeys: still the shipped example value (set LATCHKEY_COOKIE_KEYS)');
  }
  if (!config.database.url) {
    problems.push('database.url: production needs PostgreSQL, not the embedded database (set LATCHKEY_DATABASE_URL)');
  }
  if (!config.mail.smtpUrl) {
    problems.push('mail.smtpUrl: production sends real email (set LATCHKEY_SMTP_URL)');
  }
  const { webhook, twilio } = config.twoStep.sms;
  if (webhook.secret && isExampleSecret(webhook.secret)) problems.push('twoStep.sms.webhook.secret: still an example value (set LATCHKEY_SMS_WEBHOOK_SECRET)');
  if (twilio.authToken && isExampleSecret(twilio.authToken)) problems.push('twoStep.sms.twilio.authToken: still an example value (set LATCHKEY_TWILIO_AUTH_TOKEN)');
  if (config.twoStep.sms.provider === 'log') {
    problems.push('twoStep.sms.provider: "log" writes codes to the log; production sends them (set LATCHKEY_SMS_PROVIDER to webhook or twilio)');
  }
  if (config.metrics.token && isExampleSecret(config.metrics.token)) problems.push('metrics.token: still an example value (set LATCHKEY_METRICS_TOKEN)');
  if (new URL(config.issuer).protocol !== 'https:' && !config.proxy.tlsTerminated) {
    problems.push('issuer: production needs an https:// issuer (or proxy.tlsTerminated: true behind a TLS proxy)');
  }
  if (problems.length) {
    throw new ConfigError(`refusing to start in production:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

function isExampleSecret(value: string): boolean {
  return EXAMPLE_SECRETS.includes(value) || /change-me/i.test(value);
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`configuration file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (!isObject(value)) throw new ConfigError(`configuration file ${file} must hold a mapping`);
  return value;
}

function coerce(name: string, value: string, type: EnvType): unknown {
  switch (type) {
    case 'string':
      return value;
    case 'number-or-auto':
      if (value === 'auto') return value;
      if (!/^\d+$/.test(value)) throw new ConfigError(`${name}: must be a whole number or auto, got "${value}"`);
      return Number(value);
    case 'number': {
      const n = Number(value);
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new ConfigError(`${name}: must be a whole number, got "${value}"`);
      return n;
    }
    case 'list':
      return value.split(',').map((v) => v.trim()).filter(Boolean);
    case 'boolean':
      if (/^(1|true|yes)$/i.test(value)) return true;
      if (/^(0|false|no)$/i.test(value)) return false;
      throw new ConfigError(`${name}: must be true or false, got "${value}"`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? merge(prev, v) : v;
  }
  return out;
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (!isObject(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts.at(-1)!] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * The configuration for a command-line start (the server, the CLI): a configuration error is written to
 * standard error, naming the setting, and gives undefined (the caller exits with status 2).
 */
export function loadConfigOrExplain(): Config | undefined {
  try {
    return loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`latchkey: ${err.message}\n`);
    return undefined;
  }
}
