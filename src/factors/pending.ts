/**
 * One runner for an answer to a pending step (a challenge of the sign-in's second step, a step of an
 * enrolment on the account page): take the step out (one conditional delete, so an answer is checked
 * against it at most once, whatever arrives in parallel), check the answer, and settle what happens to
 * the step. The caller renders the outcome; every caller settles alike:
 *  - a refused answer puts the step back with one attempt less (`spent`), or unchanged when it was never
 *    checked (bad input, or the limits refused the attempt);
 *  - an expired step is never put back; neither is one whose method cannot work now (`unavailable`) in a
 *    sign-in, which offers another method instead (`keepWhenUnavailable: false`);
 *  - a method whose challenges cost nothing (`challengeOnce`, a passkey) gets a new challenge rather than
 *    the old one back (`again`).
 */
import type { PendingRow } from '../store/pending-steps.ts';
import { ThrottledError } from '../security/attempts.ts';
import { FactorError } from './types.ts';

const PENDING_ID = /^[A-Za-z0-9_-]{32}$/;

export interface PendingStore {
  take(id: string, binding: string): Promise<PendingRow | undefined>;
  putBack(p: PendingRow, opts?: { spent?: boolean }): Promise<PendingRow | undefined>;
}

export type PendingOutcome<T> =
  /** The answer was right: what `check` returned. The step is gone for good. */
  | { kind: 'done'; value: T; taken: PendingRow }
  /** Nothing was checked: no such step for this binding (unknown, expired, taken already) or not one `accept` takes. */
  | { kind: 'gone' }
  /** The failure limits refused the attempt before anything was checked; the step is back unchanged (if still live). */
  | { kind: 'throttled'; error: ThrottledError; taken: PendingRow; back: PendingRow | undefined }
  /**
   * The answer was refused. `status`: 401 for a wrong answer (a guess), 400 otherwise. `back`: the step
   * to answer again, or undefined when it is used up or dead; `again`: make a new challenge instead.
   */
  | { kind: 'refused'; error: FactorError; status: 400 | 401; taken: PendingRow; back: PendingRow | undefined; again: boolean };

export interface PendingAnswer<T> {
  /** The step's id as the form sent it (anything else is no step). */
  id: unknown;
  binding: string;
  /** Whether the step taken out is one this answer may check (its kind, its user, its method). */
  accept(row: PendingRow): boolean;
  /** Parses and checks the answer; throws FactorError (or ThrottledError) when it is refused. */
  check(row: PendingRow): Promise<T>;
  /** A refused answer to this step gets a new challenge rather than the old one back (a passkey's cost nothing). */
  challengeOnce(row: PendingRow): boolean;
  /** Keep the step when its method cannot work now (an enrolment retries; a sign-in offers another method). */
  keepWhenUnavailable: boolean;
}

export async function runPending<T>(store: PendingStore, answer: PendingAnswer<T>): Promise<PendingOutcome<T>> {
  const taken = typeof answer.id === 'string' && PENDING_ID.test(answer.id) ? await store.take(answer.id, answer.binding) : undefined;
  if (!taken || !answer.accept(taken)) return { kind: 'gone' };
  try {
    return { kind: 'done', value: await answer.check(taken), taken };
  } catch (err) {
    if (err instanceof ThrottledError) return { kind: 'throttled', error: err, taken, back: await store.putBack(taken, { spent: false }) };
    if (!(err instanceof FactorError)) throw err;
    const dead = err.code === 'expired' || err.code === 'denied' || (err.code === 'unavailable' && !answer.keepWhenUnavailable);
    const back = dead ? undefined : await store.putBack(taken, { spent: err.counts });
    return {
      kind: 'refused', error: err, status: err.counts ? 401 : 400, taken, back,
      again: !back && answer.challengeOnce(taken) && err.code !== 'unavailable',
    };
  }
}
