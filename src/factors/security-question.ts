/**
 * The security question: chosen from a list or written by the user; the answer is normalised (NFKC, case,
 * whitespace) and hashed with argon2id, never shown back or logged. It is knowledge, like the password: a
 * proof of it never lifts a sign-in above 1fa and never satisfies an app's request for mfa (level.ts derives
 * that from its category). It is the method the product requires first, and the accepted second step of a
 * risky sign-in under "verify only when a sign-in looks risky". It is never a way to recover an account.
 */
import { z } from 'zod';
import { enrolled, formInput, pendingAuthenticator } from './common.ts';
import { FactorError, type Authenticator, type Factor } from './types.ts';
import { PRINTABLE, tidy } from '../text.ts';

/** The questions offered (their words are in locales/en.json under factors.security-question.questions). */
export const QUESTIONS = ['firstPet', 'childhoodStreet', 'firstSchool', 'favouriteTeacher', 'firstConcert', 'grandparentTown', 'firstCar', 'childhoodFriend'] as const;

export const ANSWER_MIN = 3;
export const ANSWER_MAX = 200;
export const QUESTION_MAX = 200;
const ATTEMPTS = 5;

/** What two spellings of the same answer share: compatibility forms folded, case folded, spaces collapsed. */
export function normalizeAnswer(answer: string): string {
  // Folded before the case (as answers were always hashed): the order matters for a few characters.
  return answer.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();
}


const input = z.object({
  question: z.string().max(40).optional(),
  customQuestion: z.string().max(1000).optional(),
  answer: z.string().max(1000).optional(),
}).loose();

export interface SecurityQuestionInput {
  question?: string | undefined;
  customQuestion?: string | undefined;
  answer?: string | undefined;
}

type QuestionData = { preset: (typeof QUESTIONS)[number] } | { custom: string };

export const securityQuestion: Factor<'security-question', SecurityQuestionInput> = {
  kind: 'security-question',
  proof: { amr: ['kba'], category: 'knowledge', phishingResistant: false },
  offer: 'normal',
  backsUp: false,
  enrolment: 'form',
  multiple: false,
  challengeOnce: false,

  parse: formInput(input),

  async usable(user, ctx, mine) {
    return enrolled(user, ctx, 'security-question', mine);
  },

  enroll: {
    async begin(_user, ctx) {
      return { kind: 'security-question', data: {}, attempts: ATTEMPTS, ttlSeconds: ctx.config.twoStep.stepTtlSeconds };
    },
    async finish(_p, given, user, ctx) {
      const question = chosenQuestion(given);
      const answer = normalizeAnswer(given.answer ?? '');
      if ([...answer].length < ANSWER_MIN) throw new FactorError('invalid_input', 'factors.security-question.answerTooShort', { min: ANSWER_MIN });
      if ([...answer].length > ANSWER_MAX) throw new FactorError('invalid_input', 'factors.security-question.answerTooLong', { max: ANSWER_MAX });
      const secretHash = await ctx.hasher.hash(answer);
      // One question per account: setting it again replaces the old one (same id, new question and answer).
      const [existing] = await securityQuestion.usable(user, ctx);
      if (existing) {
        await ctx.store.authenticators.replace(user.id, existing.id, { data: question, secretHash });
        return (await ctx.store.authenticators.find(user.id, existing.id))!;
      }
      return ctx.store.authenticators.insert({ userId: user.id, kind: 'security-question', label: 'Security question', data: question, secretHash });
    },
  },

  async challenge(_user, a, ctx) {
    return { kind: 'security-question', authenticatorId: a.id, data: {}, attempts: ATTEMPTS, ttlSeconds: ctx.config.twoStep.stepTtlSeconds };
  },

  async verify(p, given, ctx) {
    const a = await pendingAuthenticator(p, ctx, 'security-question');
    const answer = normalizeAnswer(given.answer ?? '');
    if (!answer) throw new FactorError('invalid_input', 'factors.security-question.answerRequired');
    if (!a.secretHash || !(await ctx.hasher.verify(a.secretHash, answer))) throw new FactorError('wrong_answer', 'factors.security-question.wrong');
    await ctx.store.authenticators.markUsed(a.id);
    return { kind: 'security-question', authenticatorId: a.id, ...securityQuestion.proof };
  },

  async view(p, user, ctx) {
    if (!p.authenticatorId) return { form: 'setup', questions: QUESTIONS };
    const a = await pendingAuthenticator(p, ctx, 'security-question').catch(() => undefined);
    return { form: 'answer', ...(a ? questionOf(a) : {}) };
  },
};

/** The question as the page shows it: a preset's string key, or the user's own words. */
export function questionOf(a: Authenticator): { questionKey?: string; questionText?: string } {
  const data = a.data as Partial<{ preset: string; custom: string }>;
  if (typeof data.preset === 'string' && (QUESTIONS as readonly string[]).includes(data.preset)) {
    return { questionKey: `factors.security-question.questions.${data.preset}` };
  }
  return { questionText: typeof data.custom === 'string' ? data.custom : '' };
}

function chosenQuestion(given: SecurityQuestionInput): QuestionData {
  if (given.question === 'custom') {
    const custom = tidy(given.customQuestion ?? '');
    if (custom.length < 5) throw new FactorError('invalid_input', 'factors.security-question.customTooShort');
    if (custom.length > QUESTION_MAX || !PRINTABLE.test(custom)) throw new FactorError('invalid_input', 'factors.security-question.customInvalid', { max: QUESTION_MAX });
    return { custom };
  }
  const preset = QUESTIONS.find((q) => q === given.question);
  if (!preset) throw new FactorError('invalid_input', 'factors.security-question.chooseQuestion');
  return { preset };
}

