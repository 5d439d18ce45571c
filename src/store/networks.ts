/** Networks (an address prefix, with its GeoIP place when one is configured) a user completed a sign-in from. */
import type { Db } from './db.ts';

export interface UserNetwork {
  prefix: string;
  country: string | null;
  latitude: number | null;
  longitude: number | null;
  firstSeenAt: Date;
  lastSeenAt: Date;
}

interface Row {
  prefix: string; country: string | null; latitude: number | null; longitude: number | null;
  first_seen_at: Date; last_seen_at: Date;
}

export function networksRepository(db: Db) {
  return {
    /** The user's networks, most recently seen first. */
    async forUser(userId: string): Promise<UserNetwork[]> {
      const rows: Row[] = await db('user_networks').where({ user_id: userId }).orderBy('last_seen_at', 'desc').limit(500);
      return rows.map((r) => ({
        prefix: r.prefix, country: r.country, latitude: r.latitude, longitude: r.longitude,
        firstSeenAt: r.first_seen_at, lastSeenAt: r.last_seen_at,
      }));
    },
    async record(n: { userId: string; prefix: string; country?: string | null; latitude?: number | null; longitude?: number | null }): Promise<void> {
      await db.raw(
        `insert into user_networks (user_id, prefix, country, latitude, longitude) values (?, ?, ?, ?, ?)
         on conflict (user_id, prefix) do update set country = excluded.country, latitude = excluded.latitude,
           longitude = excluded.longitude, last_seen_at = now()`,
        [n.userId, n.prefix, n.country ?? null, n.latitude ?? null, n.longitude ?? null],
      );
    },
  };
}

export type NetworksRepository = ReturnType<typeof networksRepository>;
