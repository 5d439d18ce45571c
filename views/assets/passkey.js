// Passkeys ("Sign in with face or fingerprint") and security keys through @simplewebauthn/browser, served
// from this site (/assets/vendor/). Every page works without this script: the passkey and security key
// parts stay hidden, and the password and the other methods work as usual.
(() => {
  const lib = window.SimpleWebAuthnBrowser;
  const supported = !!lib && lib.browserSupportsWebAuthn();
  const showAll = (selector) => document.querySelectorAll(selector).forEach((el) => { el.hidden = false; });
  const capable = supported ? lib.platformAuthenticatorIsAvailable().catch(() => false) : Promise.resolve(false);

  // Parts shown wherever the browser can use WebAuthn at all (a security key works on any device), or only where not.
  showAll(supported ? '[data-webauthn-supported]' : '[data-webauthn-unsupported]');

  // Parts shown only where a platform authenticator (face, fingerprint, device PIN) exists, or only where not.
  capable.then((yes) => {
    showAll(yes ? '[data-passkey-capable]' : '[data-passkey-incapable]');
    // With the password, tell the server whether this device can use a passkey: one may be offered at the
    // end of the sign-in, and a second step never opens on a passkey a device without one cannot answer.
    document.querySelectorAll('input[data-passkey-capability]').forEach((input) => { input.value = yes ? 'capable' : 'incapable'; });
  });
  if (!supported) return;

  const optionsOf = (form) => JSON.parse(form.querySelector('script[type="application/json"]').textContent);
  const fail = (form, message) => {
    const box = form.querySelector('[data-passkey-error]');
    if (box) { box.textContent = message || form.dataset.failed || ''; box.hidden = false; }
  };
  const send = (form, credential, pending) => {
    if (pending) form.elements.pending.value = pending;
    // "Keep me signed in" lives in the password form; a passkey sign-in carries the same choice.
    for (const input of form.querySelectorAll('input[data-remember-from]')) {
      const box = document.getElementById(input.dataset.rememberFrom);
      input.value = box && box.checked ? 'yes' : '';
    }
    form.elements.credential.value = JSON.stringify(credential);
    form.submit();
  };

  // The sign-in page: the button, and autofill on the email field (conditional mediation).
  const signIn = document.getElementById('passkey-sign-in');
  if (signIn) {
    const challenge = async () => {
      const res = await fetch(signIn.dataset.options, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ csrf: signIn.elements.csrf.value }),
      });
      if (!res.ok) throw new Error(`options: ${res.status}`);
      return res.json();
    };
    const run = async (autofill, hints) => {
      const { pending, options } = await challenge();
      send(signIn, await lib.startAuthentication({ optionsJSON: hints ? { ...options, hints } : options, useBrowserAutofill: autofill }), pending);
    };
    signIn.addEventListener('submit', (event) => {
      event.preventDefault();
      // "Use a security key": the same challenge, with the browser going straight to its security key prompt.
      const key = event.submitter && event.submitter.hasAttribute('data-security-key');
      run(false, key ? ['security-key'] : undefined).catch(() => fail(signIn));
    });
    lib.browserSupportsWebAuthnAutofill().then((yes) => {
      if (yes && document.querySelector('input[autocomplete~="webauthn"]')) run(true).catch(() => {});
    });
  }

  // A passkey as the second step: the challenge is on the page.
  for (const form of document.querySelectorAll('form[data-passkey="assert"]')) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      lib.startAuthentication({ optionsJSON: optionsOf(form) }).then((credential) => send(form, credential), () => fail(form));
    });
  }

  // Adding a passkey (account page, or the offer after signing in).
  for (const form of document.querySelectorAll('form[data-passkey="register"]')) {
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      // A passkey of this account on this device already (the browser refuses the excluded credential): say so.
      lib.startRegistration({ optionsJSON: optionsOf(form) }).then((credential) => send(form, credential), (err) =>
        fail(form, err && err.code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED' ? form.dataset.already : undefined));
    });
  }
})();
