/**
 * A short-lived, in-process memo of client lookups. Every protocol request looks up its client (a sign-in
 * does so eight times) and clients change rarely, so a running server reuses lookups.
 *
 * How it stays correct across processes: every change made through the store is announced on the database
 * (clients.ts, pg_notify at commit) and forgets the entry here and in every other server that listens.
 * The memo is used only while this process is listening: it is emptied whenever listening (re)starts, and
 * bypassed while it is down, so a missed notification can never leave an entry behind. The remaining
 * bound is for changes made behind the store's back (SQL by hand): a lookup is reused for at most
 * CLIENT_CACHE_SECONDS after it started. Only clients that exist are remembered: a newly registered client
 * works at once, and unknown ids, which anyone can send, always go to the database and never grow the memo.
 */
export const CLIENT_CACHE_SECONDS = 5;

/** More than any deployment registers; only a bound on memory. */
const MAX_ENTRIES = 1000;

export function createClientCache<T>(ttlMs = CLIENT_CACHE_SECONDS * 1000) {
  const entries = new Map<string, { expires: number; value: Promise<T | undefined> }>();
  let live = false;
  return {
    /** On: changes are being heard (starts empty). Off: they may be missed, so every lookup reads the database. */
    setLive(on: boolean): void {
      entries.clear();
      live = on;
    },
    forget(id: string): void {
      entries.delete(id);
    },
    lookup(id: string, load: (id: string) => Promise<T | undefined>): Promise<T | undefined> {
      if (!live) return load(id);
      const now = Date.now();
      const hit = entries.get(id);
      if (hit && hit.expires > now) return hit.value;
      entries.delete(id);
      const entry = { expires: now + ttlMs, value: load(id) };
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
      entries.set(id, entry);
      const drop = () => {
        if (entries.get(id) === entry) entries.delete(id);
      };
      entry.value.then((found) => found === undefined && drop(), drop);
      return entry.value;
    },
  };
}
