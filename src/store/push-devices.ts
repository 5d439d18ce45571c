/**
 * Phones paired for mobile app prompts (docs/mobile-app-protocol.md), the nonces their keys signed with,
 * and the server's VAPID keys. A device's push subscription is sealed with the row's id as associated data;
 * a VAPID private key likewise. A nonce is recorded by one conditional insert before its signature is
 * checked, so a replay fails on every instance.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { deleted, type Db } from './db.ts';
import type { Sealer } from './seal.ts';

/** pairing: until its enrolment finished; active: receives push; open-app: checks while open; signed-out: refused. */
export type DeviceState = 'pairing' | 'active' | 'open-app' | 'signed-out';

/** A browser's PushSubscription.toJSON(). */
export interface PushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface PushDevice {
  id: string;
  userId: string;
  authenticatorId: string | null;
  pairingId: string;
  keyId: string;
  publicKey: Record<string, unknown>;
  name: string;
  subscription: PushSubscriptionJson | undefined;
  vapidKeyId: string | null;
  state: DeviceState;
  confirmedAt: Date | null;
  createdAt: Date;
  lastSeenAt: Date;
}

export interface NewPushDevice {
  userId: string;
  pairingId: string;
  keyId: string;
  publicKey: Record<string, unknown>;
  name: string;
  subscription: PushSubscriptionJson | undefined;
  vapidKeyId: string | null;
}

interface Row {
  id: string; user_id: string; authenticator_id: string | null; pairing_id: string; key_id: string;
  public_key: Record<string, unknown>; name: string; subscription_sealed: string | null; vapid_key_id: string | null;
  state: DeviceState; confirmed_at: Date | null; created_at: Date; last_seen_at: Date;
}

export interface VapidKey {
  id: string;
  publicKey: string;
  privateKey: string;
}

const purpose = (id: string) => `push-device:${id}`;
const vapidPurpose = (id: string) => `vapid:${id}`;

export class DuplicateDeviceKeyError extends Error {
  override name = 'DuplicateDeviceKeyError';
}

export function pushDevicesRepository(db: Db, sealer: Sealer) {
  const toDevice = (r: Row): PushDevice => ({
    id: r.id, userId: r.user_id, authenticatorId: r.authenticator_id, pairingId: r.pairing_id, keyId: r.key_id,
    publicKey: r.public_key, name: r.name,
    subscription: r.subscription_sealed ? JSON.parse(sealer.open(r.subscription_sealed, purpose(r.id))) as PushSubscriptionJson : undefined,
    vapidKeyId: r.vapid_key_id, state: r.state, confirmedAt: r.confirmed_at, createdAt: r.created_at, lastSeenAt: r.last_seen_at,
  });
  const sealed = (id: string, s: PushSubscriptionJson | undefined) => (s ? sealer.seal(JSON.stringify(s), purpose(id)) : null);
  return {
    /** A newly paired device (state `pairing`); DuplicateDeviceKeyError when its key or pairing is taken. */
    async insert(d: NewPushDevice): Promise<PushDevice> {
      const id = randomUUID();
      try {
        const [row] = await db<Row>('push_devices').insert({
          id, user_id: d.userId, pairing_id: d.pairingId, key_id: d.keyId,
          public_key: JSON.stringify(d.publicKey) as unknown as Record<string, unknown>, name: d.name,
          subscription_sealed: sealed(id, d.subscription), vapid_key_id: d.vapidKeyId, state: 'pairing',
        }).returning('*');
        return toDevice(row as Row);
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new DuplicateDeviceKeyError('device key or pairing already used');
        throw err;
      }
    },
    /** The device a key id belongs to, unless it signed out. */
    async findByKey(keyId: string): Promise<PushDevice | undefined> {
      const row = await db<Row>('push_devices').where({ key_id: keyId }).whereNot({ state: 'signed-out' }).first();
      return row && toDevice(row);
    },
    async findByPairing(userId: string, pairingId: string): Promise<PushDevice | undefined> {
      const row = await db<Row>('push_devices').where({ user_id: userId, pairing_id: pairingId }).first();
      return row && toDevice(row);
    },
    async findByAuthenticator(userId: string, authenticatorId: string): Promise<PushDevice | undefined> {
      const row = await db<Row>('push_devices').where({ user_id: userId, authenticator_id: authenticatorId }).first();
      return row && toDevice(row);
    },
    /** The user's devices, newest first (signed-out ones included: the account page shows them). */
    async listForUser(userId: string): Promise<PushDevice[]> {
      const rows = await db<Row>('push_devices').where({ user_id: userId }).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id' }]);
      return rows.map(toDevice);
    },
    /**
     * The device answered its test prompt: from `pairing` to active (or open-app without a subscription),
     * once. True for the one caller that did.
     */
    async confirm(id: string): Promise<boolean> {
      const n = await db('push_devices').where({ id, state: 'pairing' }).whereNull('confirmed_at')
        .update({ confirmed_at: db.fn.now(), state: db.raw(`case when subscription_sealed is null then 'open-app' else 'active' end`), last_seen_at: db.fn.now() });
      return n === 1;
    },
    /** Links a confirmed device to the method made for it, once (the enrolment's finish). */
    async linkAuthenticator(id: string, authenticatorId: string): Promise<boolean> {
      const n = await db('push_devices').where({ id }).whereNotNull('confirmed_at').whereNull('authenticator_id')
        .whereNot({ state: 'signed-out' }).update({ authenticator_id: authenticatorId });
      return n === 1;
    },
    async seen(id: string): Promise<void> {
      await db('push_devices').where({ id }).update({ last_seen_at: db.fn.now() });
    },
    /** A new subscription (or none: an "open the app" device from now on), made with this VAPID key. */
    async setSubscription(id: string, subscription: PushSubscriptionJson | undefined, vapidKeyId: string | null): Promise<void> {
      await db('push_devices').where({ id }).whereNot({ state: 'signed-out' }).update({
        subscription_sealed: sealed(id, subscription), vapid_key_id: subscription ? vapidKeyId : null,
        state: db.raw(`case when state = 'pairing' then 'pairing' when ? then 'active' else 'open-app' end`, [!!subscription]),
      });
    },
    /** The push service said the subscription is gone (404/410): the device checks while open from now on. */
    async dropSubscription(id: string, endpoint: string): Promise<void> {
      const device = await db<Row>('push_devices').where({ id }).first();
      if (!device?.subscription_sealed) return;
      const current = JSON.parse(sealer.open(device.subscription_sealed, purpose(id))) as PushSubscriptionJson;
      if (current.endpoint !== endpoint) return; // replaced meanwhile
      await db('push_devices').where({ id, subscription_sealed: device.subscription_sealed }).update({
        subscription_sealed: null, vapid_key_id: null, state: db.raw(`case when state = 'active' then 'open-app' else state end`),
      });
    },
    /** "Sign out" in the app: the key is refused from now on, the subscription forgotten. */
    async signOut(id: string): Promise<boolean> {
      const n = await db('push_devices').where({ id }).whereNot({ state: 'signed-out' })
        .update({ state: 'signed-out', subscription_sealed: null, vapid_key_id: null });
      return n === 1;
    },
    async rename(userId: string, authenticatorId: string, name: string): Promise<void> {
      await db('push_devices').where({ user_id: userId, authenticator_id: authenticatorId }).update({ name });
    },
    /**
     * Records a nonce a key signed with, in one conditional insert: true the first time, false for a replay.
     * Kept for `keepSeconds` (longer than the time window a signature is accepted in).
     */
    async useNonce(keyId: string, nonce: string, keepSeconds: number): Promise<boolean> {
      const res = await db.raw(
        `insert into device_nonces (key_id, nonce, expires_at) values (?, ?, now() + make_interval(secs => ?))
         on conflict do nothing returning nonce`,
        [keyId, nonce, keepSeconds],
      );
      return res.rows.length === 1;
    },
    /** Pairings never finished (no method made within a day) and old nonces go. */
    async purge(): Promise<number> {
      const nonces = await deleted(db('device_nonces').where('expires_at', '<=', db.fn.now()).delete());
      const stale = await deleted(db('push_devices').whereNull('authenticator_id').andWhere('created_at', '<', db.raw(`now() - interval '1 day'`)).delete());
      return nonces + stale;
    },

    /** The current VAPID key, made at first use (one row wins when instances start together). */
    async vapidKey(make: () => { publicKey: string; privateKey: string }): Promise<VapidKey> {
      const existing = await db('vapid_keys').where({ current: true }).first();
      if (!existing) {
        const id = randomBytes(9).toString('base64url');
        const pair = make();
        await db.raw(
          `insert into vapid_keys (id, public_key, private_sealed, current) values (?, ?, ?, true) on conflict do nothing`,
          [id, pair.publicKey, sealer.seal(pair.privateKey, vapidPurpose(id))],
        );
      }
      const row = await db('vapid_keys').where({ current: true }).first();
      return { id: row.id, publicKey: row.public_key, privateKey: sealer.open(row.private_sealed, vapidPurpose(row.id)) };
    },
    /** Replaces the current VAPID key (devices re-subscribe the next time they open). Returns the new one. */
    async rotateVapidKey(pair: { publicKey: string; privateKey: string }): Promise<VapidKey> {
      const id = randomBytes(9).toString('base64url');
      await db.transaction(async (trx) => {
        await trx('vapid_keys').where({ current: true }).update({ current: false });
        await trx('vapid_keys').insert({ id, public_key: pair.publicKey, private_sealed: sealer.seal(pair.privateKey, vapidPurpose(id)), current: true });
      });
      return { id, ...pair };
    },
  };
}

export type PushDevicesRepository = ReturnType<typeof pushDevicesRepository>;
