/** Everything the server and the CLI share, built from one Config: database, store, hasher, events. */
import path from 'node:path';
import type { Config } from './config.ts';
import { createMailer, type Mailer } from './delivery/mail.ts';
import { createPushSender } from './delivery/push.ts';
import { createSmsSender } from './delivery/sms.ts';
import { createEvents } from './events.ts';
import { createPasswordHasher } from './factors/password.ts';
import { openGeoIp } from './geoip.ts';
import { createAttempts } from './security/attempts.ts';
import { createLogger, type Logger } from './log.ts';
import { openDatabase, type Database } from './store/db.ts';
import { createStore } from './store/index.ts';
import { createSealer } from './store/seal.ts';

export interface ServiceOptions {
  /** Use this database instead of the configured one (tests give each suite a fresh one). */
  database?: Database;
  log?: Logger;
  mailer?: Mailer;
  /**
   * Bound each statement by `database.statementTimeoutSeconds` (the server, on); off for the CLI, whose
   * export, import and purge of a large database run long and answer nobody waiting.
   */
  statementTimeout?: boolean;
}

export function embeddedDir(config: Config): string {
  return path.join(config.database.dataDir, 'pglite');
}

export function createServices(config: Config, options: ServiceOptions = {}) {
  const log = options.log ?? createLogger(config.log.level);
  const database =
    options.database ??
    openDatabase(config.database.url
      ? { url: config.database.url, poolMax: config.database.poolMax, statementTimeoutMs: options.statementTimeout === false ? 0 : config.database.statementTimeoutSeconds * 1000 }
      : { dir: embeddedDir(config) });
  const sealer = createSealer(config.secrets.encryptionKey);
  const store = createStore(database, sealer);
  return {
    config,
    log,
    database,
    store,
    hasher: createPasswordHasher(config.argon2),
    events: createEvents(store, log),
    attempts: createAttempts(store.counters, config.throttle),
    mailer: options.mailer ?? createMailer(config, log),
    sms: createSmsSender(config, log),
    push: createPushSender(config, log),
    geoip: openGeoIp(config.risk.geoipFile, log),
  };
}

export type Services = ReturnType<typeof createServices>;
