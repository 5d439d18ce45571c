/** Every repository over one database: the only door to SQL. */
import { clientsRepository } from './clients.ts';
import { countersRepository } from './counters.ts';
import type { Database } from './db.ts';
import { oidcPayloadsRepository } from './oidc-payloads.ts';
import { oneTimeCodesRepository } from './one-time-codes.ts';
import type { Sealer } from './seal.ts';
import { securityEventsRepository } from './security-events.ts';
import { signingKeysRepository } from './signing-keys.ts';
import { usersRepository, type NewUser, type User } from './users.ts';

export function createStore(database: Database, sealer: Sealer) {
  const db = database.knex;
  return {
    database,
    users: usersRepository(db),
    clients: clientsRepository(db, sealer),
    signingKeys: signingKeysRepository(db, sealer),
    oidc: oidcPayloadsRepository(db),
    codes: oneTimeCodesRepository(db),
    counters: countersRepository(db),
    events: securityEventsRepository(db),
    /** Spends the first-admin setup token and creates the admin in one transaction: both or neither. */
    async createFirstAdmin(token: string, user: NewUser): Promise<User | undefined> {
      return db.transaction(async (trx) => {
        if (!(await oneTimeCodesRepository(trx).spend('admin_setup', token))) return undefined;
        return usersRepository(trx).create({ ...user, roles: ['admin'] });
      });
    },
  };
}

export type Store = ReturnType<typeof createStore>;
