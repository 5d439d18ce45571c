/**
 * "Cancel" or "This wasn't me" on the phone ends the sign-in the prompt was for, on the server, whatever its
 * browser does next: its progress and every other pending step go at once (so no other method can finish
 * it), and the denied prompt is kept for the sign-in's remaining time, so the second step's pages answer
 * the app with access_denied (second-step.ts) rather than offer another way. Three wrong numbers are not
 * a denial: they end the prompt only (the person may ask again or try another way).
 */
import { onSettled, type Settle } from '../push/prompts.ts';
import { stepBinding } from './state.ts';

const PREFIX = stepBinding('');

const endDeniedSignIn: Settle = async (row, status, _device, deps) => {
  if (status !== 'denied' || row.attemptsLeft <= 0 || !row.binding.startsWith(PREFIX)) return;
  const uid = row.binding.slice(PREFIX.length);
  await deps.store.pending.keepDenied(row.id, deps.config.twoStep.stepTtlSeconds);
  await deps.store.pending.dropFor(row.binding, row.id);
  await deps.store.progress.delete(uid);
};

/** Registers the rule once per process (prompts.ts keeps one handler per purpose; it gets each server's deps). */
export function endSignInsDeniedOnThePhone(): void {
  onSettled('sign-in', endDeniedSignIn);
}
