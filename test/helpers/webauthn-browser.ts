/**
 * What the WebAuthn suites in Chromium share (passkeys, security keys): users with a password and the
 * security question a new device is asked for, the steps they take on the sign-in page, pages that report
 * passkey autofill unsupported, and the ID token's claims back at the app.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { backAtApp, type ChromiumSuite } from './chromium.ts';
import type { RelyingParty } from './rp.ts';
import { addQuestion, type Person } from './two-step.ts';

/** The steps, bound to a Chromium suite (its server and app are there once the suite has started). */
export function webauthnSteps(suite: ChromiumSuite) {
  const store = () => suite.server.server.services.store;
  return {
    store,
    /** The user's stored authenticators of one kind ('webauthn' for passkeys, 'security-key'). */
    ofKind: async (userId: string, kind: string) => (await store().authenticators.listForUser(userId)).filter((a) => a.kind === kind),

    /** A new user with a password and the security question. */
    async newUser(): Promise<Person> {
      const user = { ...(await suite.newUser()), answer: 'rex the dog' };
      await addQuestion(store(), (s) => suite.server.server.services.hasher.hash(s), user.id, user.answer);
      return user;
    },

    /** On the sign-in page: the email and the password. */
    async password(page: Page, user: Person) {
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Email').fill(user.email);
      await page.getByLabel('Password', { exact: true }).fill(user.password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    },

    /** After the password on a new device: the answer to the security question. */
    async answerQuestion(page: Page, user: Person) {
      await page.getByText('What was the name of your first pet?').waitFor();
      await page.getByLabel('Your answer').fill(user.answer);
      await page.getByRole('button', { name: 'Continue' }).click();
    },

    /** Finishes at the app (consenting when asked) and returns the ID token's claims. */
    async atApp(page: Page, callbacks: string[], checks: Parameters<RelyingParty['callback']>[1]) {
      return (await suite.rp.callback(await backAtApp(page, callbacks), checks)).claims()!;
    },
  };
}

/**
 * Makes the context's pages report passkey autofill unsupported, so the buttons are what is tested (a
 * virtual authenticator answers an autofill request by itself).
 */
export async function withoutPasskeyAutofill(context: BrowserContext): Promise<void> {
  // As text: a function from this file would carry the test runner's compiled helpers into the page.
  await context.addInitScript({
    content: "if (window.PublicKeyCredential) Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: async () => false });",
  });
}
