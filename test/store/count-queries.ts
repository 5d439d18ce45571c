/**
 * Counting the statements a request makes on the real server: every statement reaches the database through
 * a connection from knex's pool (the query builder's and the prepared ones alike), so counting the queries
 * made on those connections counts them all.
 */
import type { TestServer } from '../helpers/server.ts';

/** Counts the queries made on the pool's connections from now on (BEGIN and COMMIT of a transaction too). */
export function countQueries(server: TestServer): { readonly count: number } {
  const client = server.server.services.store.database.knex.client as { acquireConnection(): Promise<{ query(...args: unknown[]): unknown }> };
  const acquire = client.acquireConnection.bind(client);
  const counted = new WeakSet<object>();
  const counter = { count: 0 };
  client.acquireConnection = async () => {
    const connection = await acquire();
    if (!counted.has(connection)) {
      counted.add(connection);
      const query = connection.query.bind(connection);
      connection.query = (...args: unknown[]) => {
        counter.count += 1;
        return query(...args);
      };
    }
    return connection;
  };
  return counter;
}
