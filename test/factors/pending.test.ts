/**
 * The life of a pending step whose answer arrives on another channel (what push approval will use): it
 * waits, one conditional write resolves it as approved or denied, the page asks for its status, and the
 * answer runner takes it once. Driven with a small test-only approval factor (a `check` that accepts an
 * approved step), against the real store and a real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runPending } from '../../src/factors/pending.ts';
import { FactorError } from '../../src/factors/types.ts';
import { stepBinding } from '../../src/interaction/state.ts';
import type { PendingRow } from '../../src/store/pending-steps.ts';
import { CookieClient } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addQuestion, addTotp, pendingOf } from '../helpers/two-step.ts';

/** The test-only approval factor: the answer is right once the step was approved on the other channel. */
const approval = (binding: string, userId: string, id: unknown) => ({
  id, binding, keepWhenUnavailable: false, challengeOnce: () => false,
  accept: (row: PendingRow) => row.kind === 'totp' && row.userId === userId,
  check: async (row: PendingRow) => {
    if (row.status === 'denied') throw new FactorError('wrong_answer');
    if (row.status !== 'approved') throw new FactorError('invalid_input', 'factors.errors.invalid_input');
    return { approvedAt: Date.now() };
  },
});

describe('a pending step answered on another channel', () => {
  let server: TestServer;
  let rp: RelyingParty;
  const store = () => server.server.services.store;

  before(async () => {
    server = await startTestServer();
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Approvals', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  /** A sign-in parked at its second step: the browser, its interaction, the step's id, the user. */
  async function parked(name: string) {
    const user = { email: `${name}@example.com`, password: `${name} has a password` };
    const { id: userId } = await server.addUser(user);
    await addQuestion(store(), (s) => server.server.services.hasher.hash(s), userId);
    await addTotp(store(), userId);
    const browser = new CookieClient(server.url);
    const login = await browser.follow((await rp.authorization({ acr_values: 'urn:latchkey:acr:mfa' })).url);
    const page = await browser.submit(login, '/login', user);
    const uid = /\/interaction\/([^/]+)\/verify/.exec(page.url)![1]!;
    return { browser, uid, userId, pending: pendingOf(page, '/verify') };
  }

  const statusAt = async (browser: CookieClient, uid: string, pending: string) => {
    const res = await browser.request(`/interaction/${uid}/verify/status?pending=${pending}`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    return (JSON.parse(res.body) as { status: string }).status;
  };

  it('waits, is approved by exactly one of 20 parallel answers, and the page sees it', async () => {
    const { browser, uid, userId, pending } = await parked('approver');
    assert.equal(await statusAt(browser, uid, pending), 'waiting');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => store().pending.resolve(pending, userId, i % 2 ? 'approved' : 'denied')));
    assert.equal(answers.filter(Boolean).length, 1, 'one conditional write resolves it');
    const first = answers.findIndex(Boolean) % 2 ? 'approved' : 'denied';
    assert.equal(await statusAt(browser, uid, pending), first, 'the first answer stands');
  });

  it('is resolved only by its own user, only while live, and only once', async () => {
    const { browser, uid, userId, pending } = await parked('owner-only');
    assert.equal(await store().pending.resolve(pending, 'someone-else', 'approved'), false);
    assert.equal(await statusAt(browser, uid, pending), 'waiting');
    assert.equal(await store().pending.resolve(pending, userId, 'approved'), true);
    assert.equal(await store().pending.resolve(pending, userId, 'denied'), false);
    assert.equal(await statusAt(browser, uid, pending), 'approved');
    await server.server.services.database.knex('pending_steps').where({ id: pending }).update({ expires_at: new Date(Date.now() - 1000) });
    assert.equal(await statusAt(browser, uid, pending), 'expired');
    const other = await parked('too-late');
    await server.server.services.database.knex('pending_steps').where({ id: other.pending }).update({ expires_at: new Date(Date.now() - 1000) });
    assert.equal(await store().pending.resolve(other.pending, other.userId, 'approved'), false, 'an expired step cannot be approved');
  });

  it('tells another sign-in nothing about a step that is not its own', async () => {
    const mine = await parked('mine');
    const theirs = await parked('theirs');
    await store().pending.resolve(mine.pending, mine.userId, 'approved');
    assert.equal(await statusAt(theirs.browser, theirs.uid, mine.pending), 'expired');
    assert.equal(await statusAt(mine.browser, mine.uid, 'not-an-id'), 'expired');
  });

  it('is answered through the runner: refused while waiting (kept, nothing spent), taken once when approved', async () => {
    const { uid, userId, pending } = await parked('runner');
    const binding = stepBinding(uid);
    const waiting = await runPending(store().pending, approval(binding, userId, pending));
    assert.equal(waiting.kind, 'refused');
    assert.ok(waiting.kind === 'refused' && waiting.back && waiting.status === 400);
    const back = waiting.kind === 'refused' ? waiting.back! : undefined;
    assert.equal(back!.status, 'waiting');
    assert.equal(back!.attemptsLeft, waiting.kind === 'refused' ? waiting.taken.attemptsLeft : -1, 'nothing spent');

    assert.equal(await store().pending.resolve(back!.id, userId, 'approved'), true);
    const [a, b] = await Promise.all([runPending(store().pending, approval(binding, userId, back!.id)), runPending(store().pending, approval(binding, userId, back!.id))]);
    assert.deepEqual([a.kind, b.kind].sort(), ['done', 'gone'], 'the approved step is taken once');
    assert.equal(await store().pending.statusOf(back!.id, binding), 'expired', 'and is gone');
  });

  it('counts a denial as a refused answer (401) and keeps the status with the step put back', async () => {
    const { uid, userId, pending } = await parked('denied');
    assert.equal(await store().pending.resolve(pending, userId, 'denied'), true);
    const outcome = await runPending(store().pending, approval(stepBinding(uid), userId, pending));
    assert.ok(outcome.kind === 'refused' && outcome.status === 401);
    assert.equal(outcome.back?.status, 'denied');
    assert.equal(outcome.back?.attemptsLeft, outcome.taken.attemptsLeft - 1);
  });
});
