/**
 * What the app says about a failed call: the server's stable codes (api.js's ApiError) in the app's own
 * words (strings.js), the server's message for a code the app does not know, and which failures end a
 * prompt for good (no point in trying again).
 */
import { ApiError } from './api.js';
import { has, t, tn } from './strings.js';

/** The codes after which a prompt can no longer be answered. */
const FINAL = new Set(['prompt_ended', 'unknown_prompt', 'already_answered', 'expired', 'unknown_device']);

export function errorText(err) {
  if (!(err instanceof ApiError)) return t('error.other', { code: err?.name ?? 'error' });
  const left = err.details?.attemptsLeft;
  if (err.code === 'wrong_number' && Number.isInteger(left)) return tn('error.wrong_number', left);
  if (has(`error.${err.code}`)) return t(`error.${err.code}`);
  return err.serverMessage || t('error.other', { code: err.code });
}

export const isFinal = (err) => err instanceof ApiError && FINAL.has(err.code);

/** This device is unknown to the server (removed from the account page, or signed out). */
export const isUnpaired = (err) => err instanceof ApiError && err.code === 'unknown_device';
