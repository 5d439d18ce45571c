/**
 * Known devices: browsers on which a user completed a sign-in. The browser keeps a random id in a signed
 * cookie (security/device.ts); only its hash is stored, per user, so a cookie proves nothing for another
 * user and a forgotten device is unknown again.
 */
import { randomUUID } from 'node:crypto';
import { deleted, type Db } from './db.ts';

export interface Device {
  id: string;
  userId: string;
  deviceHash: string;
  userAgent: string | null;
  ip: string | null;
  firstSeenAt: Date;
  lastSeenAt: Date;
}

interface Row {
  id: string; user_id: string; device_hash: string; user_agent: string | null; ip: string | null;
  first_seen_at: Date; last_seen_at: Date;
}

const toDevice = (r: Row): Device => ({
  id: r.id, userId: r.user_id, deviceHash: r.device_hash, userAgent: r.user_agent, ip: r.ip,
  firstSeenAt: r.first_seen_at, lastSeenAt: r.last_seen_at,
});

export function devicesRepository(db: Db) {
  return {
    async isKnown(userId: string, deviceHash: string): Promise<boolean> {
      return !!(await db('devices').where({ user_id: userId, device_hash: deviceHash }).first('id'));
    },
    /** Marks the device known (or seen again); `added` when it was not known before. */
    async remember(d: { userId: string; deviceHash: string; userAgent: string | null; ip: string | null }): Promise<{ added: boolean }> {
      const res = await db.raw(
        `insert into devices (id, user_id, device_hash, user_agent, ip) values (?, ?, ?, ?, ?)
         on conflict (user_id, device_hash) do update set user_agent = excluded.user_agent, ip = excluded.ip, last_seen_at = now()
         returning (xmax = 0) as added`,
        [randomUUID(), d.userId, d.deviceHash, d.userAgent?.slice(0, 512) ?? null, d.ip],
      );
      return { added: (res.rows as { added: boolean }[])[0]?.added === true };
    },
    /** Most recently seen first. */
    async listForUser(userId: string): Promise<Device[]> {
      const rows = await db<Row>('devices').where({ user_id: userId }).orderBy('last_seen_at', 'desc');
      return rows.map(toDevice);
    },
    async count(userId: string): Promise<number> {
      const row = await db('devices').where({ user_id: userId }).count<{ n: number }>('id as n').first();
      return Number(row?.n ?? 0);
    },
    /** "Don't ask again" for the passkey offer, for this user on this device. */
    async declinePasskeyOffer(userId: string, deviceHash: string): Promise<void> {
      await db('devices').where({ user_id: userId, device_hash: deviceHash }).update({ passkey_offer_declined_at: db.fn.now() });
    },
    async passkeyOfferDeclined(userId: string, deviceHash: string): Promise<boolean> {
      return !!(await db('devices').where({ user_id: userId, device_hash: deviceHash }).whereNotNull('passkey_offer_declined_at').first('id'));
    },
    async forget(userId: string, id: string): Promise<boolean> {
      return (await deleted(db('devices').where({ user_id: userId, id }).delete())) > 0;
    },
    async forgetByHash(userId: string, deviceHash: string): Promise<boolean> {
      return (await deleted(db('devices').where({ user_id: userId, device_hash: deviceHash }).delete())) > 0;
    },
    async forgetAll(userId: string): Promise<number> {
      return deleted(db('devices').where({ user_id: userId }).delete());
    },
  };
}

export type DevicesRepository = ReturnType<typeof devicesRepository>;
