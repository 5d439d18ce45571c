/** What the factor modules share: reading a form into their input, and the authenticator a pending step is for. */
import type { z } from 'zod';
import type { User } from '../store/users.ts';
import { FactorError, type Authenticator, type FactorContext, type Pending, type StepKind } from './types.ts';
import { PRINTABLE, tidy } from '../text.ts';

/** The longest name a person may give a method (a passkey, an authenticator app). */
export const LABEL_MAX = 60;

/** A method's name as given when it is added or renamed, tidied; may be empty (the factor names it then). */
export function methodLabel(raw: string | undefined): string {
  const label = tidy(raw ?? '');
  if (label.length > LABEL_MAX || !PRINTABLE.test(label)) throw new FactorError('invalid_input', 'factors.labelInvalid', { max: LABEL_MAX });
  return label;
}

/**
 * The traits of a method a user may own several of, added by a form after the security question, with a
 * challenge that takes a few answers: an authenticator app, a phone.
 */
export const OWNED_METHOD = { needs: 'security-question', backsUp: false, enrolment: 'form', multiple: true, challengeOnce: false } as const;

/** A factor's `parse`: the submitted form through its schema, or FactorError('invalid_input'). */
export function formInput<S extends z.ZodType>(schema: S): (body: Record<string, string>) => z.infer<S> {
  return (body) => {
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new FactorError('invalid_input');
    return parsed.data;
  };
}

/** The user's authenticator of this kind that the pending step was made for; FactorError('unavailable') when it is gone. */
export async function pendingAuthenticator(p: Pending, ctx: FactorContext, kind: StepKind, usable: (a: Authenticator) => boolean = () => true): Promise<Authenticator> {
  const a = p.authenticatorId ? await ctx.store.authenticators.find(p.userId, p.authenticatorId) : undefined;
  if (!a || a.kind !== kind || !usable(a)) throw new FactorError('unavailable', 'factors.errors.gone');
  return a;
}

/** The user's authenticators of a kind: from `mine` when the caller read them already, else from the store. */
export async function enrolled(user: User, ctx: FactorContext, kind: StepKind, mine?: readonly Authenticator[]): Promise<Authenticator[]> {
  return (mine ?? (await ctx.store.authenticators.listForUser(user.id))).filter((a) => a.kind === kind);
}
