import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, EXAMPLE_SECRETS, loadConfig, type Config } from '../src/config.ts';
import { projectRoot } from '../src/paths.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-config-'));
let files = 0;
/** Writes a YAML file for LATCHKEY_CONFIG and returns its path. */
const yamlFile = (text: string) => {
  const file = path.join(dir, `config-${files++}.yaml`);
  writeFileSync(file, text);
  return file;
};

/** loadConfig must throw a ConfigError whose message names every key in `keys`. */
function refuses(env: Record<string, string>, ...keys: (string | RegExp)[]): ConfigError {
  let caught: unknown;
  try {
    loadConfig({ env });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(env)}, got ${String(caught)}`);
  for (const key of keys) {
    if (typeof key === 'string') assert.ok(caught.message.includes(key), `"${caught.message}" should name ${key}`);
    else assert.match(caught.message, key);
  }
  return caught;
}

const strongKey = 'k7Qp2vR9xW4mZ8nB3cF6hJ1tY5uL0aS2dG7e';
const strongCookie = 'Xy3Nq8Wm2Kp7Rv5Tz1Bc9Df4Gh6Jl0Mn8Pq2Rs';
const production = {
  LATCHKEY_ENV: 'production',
  LATCHKEY_ISSUER: 'https://login.example.com',
  LATCHKEY_DATABASE_URL: 'postgres://latchkey:pw@db.internal:5432/latchkey',
  LATCHKEY_ENCRYPTION_KEY: strongKey,
  LATCHKEY_COOKIE_KEYS: strongCookie,
  LATCHKEY_SMTP_URL: 'smtp://latchkey:pw@smtp.example.com:587',
  LATCHKEY_SMS_PROVIDER: 'webhook',
  LATCHKEY_SMS_WEBHOOK_URL: 'https://sms.internal/send',
  LATCHKEY_SMS_WEBHOOK_SECRET: 'Mq4Zt8Lw2Xc6Vb0Nr5Ks9Jd3Hf7Gp1Ty4E',
};

describe('configuration', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('defaults', () => {
    const config: Config = loadConfig({ env: {} });

    it('starts in development on port 3000 with the embedded database under ./data and its own localhost issuer', () => {
      assert.equal(config.env, 'development');
      assert.equal(config.port, 3000);
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.issuer, 'http://localhost:3000');
      assert.equal(config.database.url, undefined);
      assert.equal(config.database.dataDir, path.resolve('./data'));
      assert.ok(path.isAbsolute(config.database.dataDir));
      assert.deepEqual(config.proxy.trusted, []);
      assert.equal(config.proxy.tlsTerminated, false);
      assert.equal(config.log.level, 'info');
      assert.deepEqual(config.keys.algorithms, ['RS256', 'ES256', 'EdDSA']);
    });

    it('ships argon2id at the OWASP minimum: m=19456 KiB, t=2, p=1', () => {
      assert.equal(config.argon2.memoryCost, 19456);
      assert.equal(config.argon2.timeCost, 2);
      assert.equal(config.argon2.parallelism, 1);
    });

    it('ships a 60-second authorization code lifetime', () => {
      assert.equal(config.ttl.authorizationCode, 60);
    });

    it('ships the example secrets that production refuses', () => {
      assert.ok(EXAMPLE_SECRETS.includes(config.secrets.encryptionKey));
      assert.ok(config.secrets.cookieKeys.every((k) => EXAMPLE_SECRETS.includes(k)));
    });

    it('is frozen, so nothing can change it after start-up', () => {
      assert.ok(Object.isFrozen(config));
      assert.ok(Object.isFrozen(config.database));
      assert.throws(() => {
        (config.database as { url?: string }).url = 'postgres://x/y';
      }, TypeError);
    });

    it('ignores the process environment when given an explicit env', () => {
      const before = process.env.LATCHKEY_PORT;
      process.env.LATCHKEY_PORT = '4444';
      try {
        assert.equal(loadConfig({ env: {} }).port, 3000);
      } finally {
        if (before === undefined) delete process.env.LATCHKEY_PORT;
        else process.env.LATCHKEY_PORT = before;
      }
    });
  });

  describe('LATCHKEY_* overrides', () => {
    it('takes the port, and derives the default issuer from it', () => {
      const config = loadConfig({ env: { LATCHKEY_PORT: '8080' } });
      assert.equal(config.port, 8080);
      assert.equal(config.issuer, 'http://localhost:8080');
    });

    it('takes the issuer, without a trailing slash', () => {
      assert.equal(loadConfig({ env: { LATCHKEY_ISSUER: 'https://login.example.com/' } }).issuer, 'https://login.example.com');
      assert.equal(loadConfig({ env: { LATCHKEY_ISSUER: 'https://example.com/idp' } }).issuer, 'https://example.com/idp');
    });

    it('takes the database URL and the data directory (made absolute)', () => {
      const config = loadConfig({ env: { LATCHKEY_DATABASE_URL: 'postgres://u:p@db:5432/lk', LATCHKEY_DATA_DIR: 'some/where' } });
      assert.equal(config.database.url, 'postgres://u:p@db:5432/lk');
      assert.equal(config.database.dataDir, path.resolve('some/where'));
      assert.equal(loadConfig({ env: { LATCHKEY_DATA_DIR: '/var/lib/latchkey' } }).database.dataDir, '/var/lib/latchkey');
    });

    it('takes the trusted proxies as a comma-separated list', () => {
      const config = loadConfig({ env: { LATCHKEY_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.5,::1 ,' } });
      assert.deepEqual(config.proxy.trusted, ['10.0.0.0/8', '192.168.1.5', '::1']);
    });

    it('takes booleans, the log level and the cookie keys', () => {
      const config = loadConfig({ env: { LATCHKEY_TLS_TERMINATED_BY_PROXY: 'yes', LATCHKEY_LOG_LEVEL: 'warn', LATCHKEY_COOKIE_KEYS: `${strongCookie},${strongKey}` } });
      assert.equal(config.proxy.tlsTerminated, true);
      assert.equal(config.log.level, 'warn');
      assert.deepEqual(config.secrets.cookieKeys, [strongCookie, strongKey]);
    });

    it('lets the environment win over a LATCHKEY_CONFIG file, which wins over the defaults', () => {
      const file = yamlFile('port: 5000\nproductName: Acme Login\nargon2:\n  timeCost: 3\n');
      const fromFile = loadConfig({ env: { LATCHKEY_CONFIG: file } });
      assert.equal(fromFile.port, 5000);
      assert.equal(fromFile.productName, 'Acme Login');
      assert.equal(fromFile.argon2.timeCost, 3);
      assert.equal(fromFile.argon2.memoryCost, 19456, 'a nested key in the file does not drop its siblings');
      assert.equal(loadConfig({ env: { LATCHKEY_CONFIG: file, LATCHKEY_PORT: '5001' } }).port, 5001);
    });

    it('treats an empty variable as unset', () => {
      assert.equal(loadConfig({ env: { LATCHKEY_PORT: '' } }).port, 3000);
    });
  });

  describe('bad values stop with a ConfigError naming the key', () => {
    it('refuses a port that is not a number', () => {
      refuses({ LATCHKEY_PORT: 'abc' }, 'LATCHKEY_PORT', 'abc');
      refuses({ LATCHKEY_PORT: '-1' }, 'LATCHKEY_PORT');
      refuses({ LATCHKEY_PORT: '80.5' }, 'LATCHKEY_PORT');
    });

    it('refuses a port out of range', () => {
      refuses({ LATCHKEY_PORT: '70000' }, /\bport\b/);
    });

    it('refuses an issuer that is not http(s), or has a query or fragment', () => {
      refuses({ LATCHKEY_ISSUER: 'ftp://x' }, 'issuer', 'http(s)');
      refuses({ LATCHKEY_ISSUER: 'not a url' }, 'issuer');
      refuses({ LATCHKEY_ISSUER: 'https://login.example.com/?tenant=1' }, 'issuer', 'query');
    });

    it('refuses a database URL that is not postgres://', () => {
      refuses({ LATCHKEY_DATABASE_URL: 'mysql://u@db/lk' }, 'database.url');
    });

    it('refuses a trusted proxy that is not an IP or CIDR', () => {
      refuses({ LATCHKEY_TRUSTED_PROXIES: '10.0.0.0/8,proxy.internal' }, 'proxy.trusted');
      refuses({ LATCHKEY_TRUSTED_PROXIES: '10.0.0.0/33' }, 'proxy.trusted');
    });

    it('refuses a boolean that is neither true nor false', () => {
      refuses({ LATCHKEY_TLS_TERMINATED_BY_PROXY: 'maybe' }, 'LATCHKEY_TLS_TERMINATED_BY_PROXY');
    });

    it('refuses an unknown log level or environment', () => {
      refuses({ LATCHKEY_LOG_LEVEL: 'loud' }, 'log.level');
      refuses({ LATCHKEY_ENV: 'staging' }, /\benv\b/);
    });

    it('refuses a short secret', () => {
      refuses({ LATCHKEY_ENCRYPTION_KEY: 'short' }, 'secrets.encryptionKey', '32');
    });

    it('refuses argon2 memoryCost below the OWASP minimum of 19456 KiB', () => {
      refuses({ LATCHKEY_CONFIG: yamlFile('argon2:\n  memoryCost: 19455\n') }, 'argon2.memoryCost', '19456');
      refuses({ LATCHKEY_CONFIG: yamlFile('argon2:\n  timeCost: 1\n') }, 'argon2.timeCost');
    });

    it('refuses an authorization code lifetime above 10 minutes', () => {
      refuses({ LATCHKEY_CONFIG: yamlFile('ttl:\n  authorizationCode: 601\n') }, 'ttl.authorizationCode');
    });

    it('refuses an unknown key in YAML, at the top and nested', () => {
      refuses({ LATCHKEY_CONFIG: yamlFile('prot: 3000\n') }, 'prot');
      refuses({ LATCHKEY_CONFIG: yamlFile('database:\n  uri: postgres://x/y\n') }, /database/, 'uri');
    });

    it('refuses a missing, unparsable or non-mapping LATCHKEY_CONFIG file', () => {
      refuses({ LATCHKEY_CONFIG: path.join(dir, 'does-not-exist.yaml') }, 'does-not-exist.yaml');
      refuses({ LATCHKEY_CONFIG: yamlFile('port: [1, 2\n') }, 'not valid YAML');
      refuses({ LATCHKEY_CONFIG: yamlFile('- 1\n- 2\n') }, 'mapping');
    });

    it('names every bad key at once', () => {
      const err = refuses({ LATCHKEY_ISSUER: 'ftp://x', LATCHKEY_LOG_LEVEL: 'loud' }, 'issuer', 'log.level');
      assert.match(err.message, /invalid configuration/);
    });
  });

  it('refuses a metrics token that could never match an Authorization header (spaces, non-ASCII, too long)', () => {
    const token = 'Mq4Zt8Lw2Xc6Vb0Nr5Ks9Jd3Hf7Gp1Ty4EmT';
    assert.equal(loadConfig({ env: { LATCHKEY_METRICS_TOKEN: token } }).metrics.token, token);
    for (const bad of [`${token} with spaces`, `${token}é`, 'x'.repeat(513)]) refuses({ LATCHKEY_METRICS_TOKEN: bad }, 'metrics.token');
  });

  describe('production', () => {
    it('starts with proper values', () => {
      const config = loadConfig({ env: production });
      assert.equal(config.env, 'production');
      assert.equal(config.issuer, 'https://login.example.com');
      assert.equal(config.secrets.encryptionKey, strongKey);
    });

    it('refuses the shipped example secrets', () => {
      const { LATCHKEY_ENCRYPTION_KEY: _e, ...noKey } = production;
      refuses(noKey, 'secrets.encryptionKey', 'example');
      const { LATCHKEY_COOKIE_KEYS: _c, ...noCookie } = production;
      refuses(noCookie, 'secrets.cookieKeys', 'example');
      refuses({ ...production, LATCHKEY_COOKIE_KEYS: `${strongCookie},${EXAMPLE_SECRETS[1]}` }, 'secrets.cookieKeys');
    });

    it('refuses the placeholder secrets of config/production.example.yaml', () => {
      const file = path.join(projectRoot, 'config', 'production.example.yaml');
      const err = refuses({ LATCHKEY_CONFIG: file }, 'refusing to start in production', 'secrets.encryptionKey', 'secrets.cookieKeys');
      assert.doesNotMatch(err.message, /database\.url|issuer:/, 'the example file has a database and an https issuer');
    });

    it('refuses the embedded database', () => {
      const { LATCHKEY_DATABASE_URL: _d, ...noDatabase } = production;
      refuses(noDatabase, 'database.url', 'embedded');
    });

    it('refuses a non-https issuer, unless TLS is terminated by a proxy', () => {
      const plain = { ...production, LATCHKEY_ISSUER: 'http://login.example.com' };
      refuses(plain, 'issuer', 'https');
      const config = loadConfig({ env: { ...plain, LATCHKEY_TLS_TERMINATED_BY_PROXY: 'true' } });
      assert.equal(config.issuer, 'http://login.example.com');
      refuses({ ...plain, LATCHKEY_TLS_TERMINATED_BY_PROXY: 'false' }, 'issuer');
    });

    it('refuses the development SMS provider, which writes codes to the log', () => {
      const { LATCHKEY_SMS_PROVIDER: _p, ...logSms } = production;
      refuses(logSms, 'twoStep.sms.provider', 'log');
      refuses({ ...production, LATCHKEY_SMS_WEBHOOK_SECRET: 'change-me-change-me-change-me-change-me' }, 'twoStep.sms.webhook.secret', 'example');
    });

    it('lists every problem at once', () => {
      const err = refuses({ LATCHKEY_ENV: 'production' }, 'secrets.encryptionKey', 'secrets.cookieKeys', 'database.url', 'issuer');
      assert.match(err.message, /refusing to start in production/);
    });
  });

  describe('two-step and risk settings', () => {
    const webhookUrl = 'https://sms.internal/send';
    const webhookSecret = 'Mq4Zt8Lw2Xc6Vb0Nr5Ks9Jd3Hf7Gp1Ty4E';
    const twilio: Record<string, string> = {
      LATCHKEY_SMS_PROVIDER: 'twilio',
      LATCHKEY_TWILIO_ACCOUNT_SID: `AC${'0a1b'.repeat(8)}`,
      LATCHKEY_TWILIO_AUTH_TOKEN: 'twilio-auth-token-0123456789',
      LATCHKEY_TWILIO_FROM: '+15551234567',
    };
    const without = (env: Record<string, string>, name: string) => Object.fromEntries(Object.entries(env).filter(([k]) => k !== name));

    it('ships a 15-minute second step, 10 recovery codes, 6-digit TOTP, 90 days before inactivity counts, and new-device alerts on', () => {
      const config = loadConfig({ env: {} });
      assert.equal(config.twoStep.stepTtlSeconds, 900);
      assert.equal(config.twoStep.recoveryCodes.count, 10);
      assert.deepEqual(config.twoStep.totp, { digits: 6, pastSteps: 1, futureSteps: 0 });
      assert.equal(config.risk.inactivityDays, 90);
      assert.equal(config.risk.newDeviceAlert, true);
      assert.equal(config.twoStep.sms.provider, 'log');
    });

    it('refuses fewer than 10 recovery codes, and TOTP codes of fewer than 6 or more than 8 digits', () => {
      refuses({ LATCHKEY_CONFIG: yamlFile('twoStep:\n  recoveryCodes:\n    count: 9\n') }, 'twoStep.recoveryCodes.count', 'at least 10');
      refuses({ LATCHKEY_CONFIG: yamlFile('twoStep:\n  totp:\n    digits: 9\n') }, 'twoStep.totp.digits');
      refuses({ LATCHKEY_CONFIG: yamlFile('twoStep:\n  totp:\n    digits: 5\n') }, 'twoStep.totp.digits');
      assert.equal(loadConfig({ env: { LATCHKEY_CONFIG: yamlFile('twoStep:\n  totp:\n    digits: 8\n') } }).twoStep.totp.digits, 8);
      refuses({ LATCHKEY_CONFIG: yamlFile('twoStep:\n  stepTtlSeconds: 3601\n') }, 'twoStep.stepTtlSeconds');
    });

    it('refuses an unknown SMS provider, and the webhook provider without both a URL and a secret of 32 characters', () => {
      refuses({ LATCHKEY_SMS_PROVIDER: 'pigeon' }, 'twoStep.sms.provider');
      refuses({ LATCHKEY_SMS_PROVIDER: 'webhook' }, 'twoStep.sms.webhook', 'needs webhook.url and webhook.secret');
      refuses({ LATCHKEY_SMS_PROVIDER: 'webhook', LATCHKEY_SMS_WEBHOOK_URL: webhookUrl }, 'twoStep.sms.webhook', 'webhook.secret');
      refuses({ LATCHKEY_SMS_PROVIDER: 'webhook', LATCHKEY_SMS_WEBHOOK_SECRET: webhookSecret }, 'twoStep.sms.webhook', 'webhook.url');
      refuses({ LATCHKEY_SMS_PROVIDER: 'webhook', LATCHKEY_SMS_WEBHOOK_URL: webhookUrl, LATCHKEY_SMS_WEBHOOK_SECRET: 'too short' }, 'twoStep.sms.webhook.secret', '32');
      refuses({ LATCHKEY_SMS_PROVIDER: 'webhook', LATCHKEY_SMS_WEBHOOK_URL: 'ftp://sms.internal', LATCHKEY_SMS_WEBHOOK_SECRET: webhookSecret }, 'twoStep.sms.webhook.url');
      const config = loadConfig({ env: { LATCHKEY_SMS_PROVIDER: 'webhook', LATCHKEY_SMS_WEBHOOK_URL: webhookUrl, LATCHKEY_SMS_WEBHOOK_SECRET: webhookSecret } });
      assert.equal(config.twoStep.sms.provider, 'webhook');
    });

    it('refuses the twilio provider without an account SID, an auth token, and a sender number or messaging service', () => {
      assert.equal(loadConfig({ env: twilio }).twoStep.sms.provider, 'twilio');
      for (const missing of ['LATCHKEY_TWILIO_ACCOUNT_SID', 'LATCHKEY_TWILIO_AUTH_TOKEN', 'LATCHKEY_TWILIO_FROM']) {
        refuses(without(twilio, missing), 'twoStep.sms.twilio', 'needs accountSid, authToken and from or messagingServiceSid');
      }
      refuses({ ...twilio, LATCHKEY_TWILIO_ACCOUNT_SID: 'SK0123' }, 'twoStep.sms.twilio.accountSid');
      refuses({ ...twilio, LATCHKEY_TWILIO_FROM: '555-1234' }, 'twoStep.sms.twilio.from', 'E.164');
      const service = `MG${'2c3d'.repeat(8)}`;
      const config = loadConfig({ env: { ...without(twilio, 'LATCHKEY_TWILIO_FROM'), LATCHKEY_TWILIO_MESSAGING_SERVICE_SID: service } });
      assert.equal(config.twoStep.sms.twilio.messagingServiceSid, service, 'a messaging service instead of a number');
      assert.equal(config.twoStep.sms.twilio.from, undefined);
    });

    it('takes the SMS settings from LATCHKEY_SMS_* and LATCHKEY_TWILIO_* variables', () => {
      const webhook = loadConfig({ env: { LATCHKEY_SMS_PROVIDER: 'webhook', LATCHKEY_SMS_WEBHOOK_URL: webhookUrl, LATCHKEY_SMS_WEBHOOK_SECRET: webhookSecret } }).twoStep.sms;
      assert.deepEqual(webhook.webhook, { url: webhookUrl, secret: webhookSecret });
      const service = `MG${'4e5f'.repeat(8)}`;
      const { sms } = loadConfig({ env: { ...twilio, LATCHKEY_TWILIO_MESSAGING_SERVICE_SID: service } }).twoStep;
      assert.equal(sms.provider, 'twilio');
      assert.deepEqual(sms.twilio, {
        accountSid: twilio.LATCHKEY_TWILIO_ACCOUNT_SID, authToken: twilio.LATCHKEY_TWILIO_AUTH_TOKEN, from: twilio.LATCHKEY_TWILIO_FROM,
        messagingServiceSid: service, baseUrl: 'https://api.twilio.com',
      });
      assert.deepEqual(sms.webhook, {}, 'nothing lands anywhere else');
    });
  });
});
