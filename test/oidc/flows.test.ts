import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { rejectsWith, responseParams, userinfo } from '../helpers/oauth.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const REDIRECT = 'http://localhost:9999/cb';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

describe('PAR, DPoP and the device authorization grant', () => {
  let server: TestServer;
  let rp: RelyingParty;
  let publicRp: RelyingParty;
  let tv: RelyingParty;
  const frank = { email: 'frank@example.com', password: 'frank likes long passwords' };

  before(async () => {
    server = await startTestServer();
    await server.addUser({ ...frank, name: 'Frank Example' });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Web', redirectUris: [REDIRECT] }));
    publicRp = await RelyingParty.create(server.url, await server.addClient({ name: 'SPA', public: true, redirectUris: [REDIRECT] }));
    tv = await RelyingParty.create(server.url, await server.addClient({ name: 'Living Room TV', public: true, grantTypes: [DEVICE_CODE, 'refresh_token'] }));
  });
  after(() => server.stop());

  describe('pushed authorization requests', () => {
    it('signs in end to end with buildAuthorizationUrlWithPAR; the front channel carries only client_id and request_uri', async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = await oidc.buildAuthorizationUrlWithPAR(rp.config, {
        redirect_uri: REDIRECT, scope: 'openid email', state, nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
      assert.match(url.searchParams.get('request_uri')!, /^urn:ietf:params:oauth:request_uri:/);
      const browser = new CookieClient(server.url);
      const back = await drive(browser, url.toString(), frank);
      const tokens = await rp.callback(back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
      assert.equal(tokens.claims()!.acr, 'urn:latchkey:acr:1fa');
      assert.equal(tokens.claims()!.email, undefined);
      const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, tokens.claims()!.sub);
      assert.equal(info.email, frank.email);

      // A request_uri is single use: replaying it gives an error, not a second code.
      const replay = await browser.follow(url.toString());
      const code = replay.stoppedAt ? responseParams(replay.stoppedAt).get('code') : null;
      assert.equal(code, null, 'no code from a replayed request_uri');
      assert.match(replay.stoppedAt ? responseParams(replay.stoppedAt).get('error')! : replay.body, /invalid_request_uri/);
    });

    it('honours a level asked for inside a pushed request: acr_values=mfa ends with unmet_authentication_requirements', async () => {
      const levels: Record<string, string>[] = [
        { acr_values: 'urn:latchkey:acr:mfa' },
        { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:latchkey:acr:mfa'] } } }) },
      ];
      for (const level of levels) {
        const url = await oidc.buildAuthorizationUrlWithPAR(rp.config, {
          redirect_uri: REDIRECT, scope: 'openid', state: oidc.randomState(), ...level,
          code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
        });
        const browser = new CookieClient(server.url);
        const loginPage = await browser.follow(url.toString());
        assert.match(loginPage.body, /\/login"/);
        const required = await browser.submit(loginPage, '/login', frank);
        assert.match(required.body, /Two-step verification needed/, 'a password-only user is told how to add a method');
        const back = await browser.submit(required, '/unmet');
        const params = responseParams(back.stoppedAt);
        assert.equal(params.get('error'), 'unmet_authentication_requirements', JSON.stringify(level));
        assert.equal(params.get('code'), null);
      }
    });

    it('refuses a pushed request with an unregistered redirect_uri', async () => {
      await rejectsWith(
        oidc.buildAuthorizationUrlWithPAR(rp.config, {
          redirect_uri: 'https://attacker.example/cb', scope: 'openid',
          code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
        }),
        'invalid_request',
      );
    });
  });

  describe('DPoP', () => {
    it('binds tokens to the DPoP key: token_type DPoP, userinfo works with a proof and fails as a Bearer token or with another key', async () => {
      const dpop = oidc.getDPoPHandle(rp.config, await oidc.randomDPoPKeyPair('ES256'));
      const { url, checks } = await rp.authorization({ scope: 'openid email' });
      const back = await drive(new CookieClient(server.url), url, frank);
      const tokens = await oidc.authorizationCodeGrant(rp.config, new URL(back), checks, undefined, { DPoP: dpop });
      assert.equal(tokens.token_type.toLowerCase(), 'dpop');
      const sub = tokens.claims()!.sub;

      const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, sub, { DPoP: dpop });
      assert.equal(info.email, frank.email);

      // Stolen token, no key: as a Bearer token it is refused.
      const asBearer = await userinfo(server.url, tokens.access_token, 'Bearer');
      assert.equal(asBearer.status, 401);
      assert.equal(asBearer.body?.email, undefined);
      // As DPoP without a proof, refused too.
      const noProof = await userinfo(server.url, tokens.access_token, 'DPoP');
      assert.ok([400, 401].includes(noProof.status), `refused, got ${noProof.status}`);
      assert.equal(noProof.body?.email, undefined);
      // With a proof from another key, refused.
      const thief = oidc.getDPoPHandle(rp.config, await oidc.randomDPoPKeyPair('ES256'));
      await assert.rejects(oidc.fetchUserInfo(rp.config, tokens.access_token, sub, { DPoP: thief }));

      const introspected = await oidc.tokenIntrospection(rp.config, tokens.access_token);
      assert.equal(introspected.active, true);
      assert.equal(introspected.token_type, 'DPoP');
      assert.equal(typeof (introspected.cnf as { jkt?: unknown } | undefined)?.jkt, 'string');
    });

    it('binds a public client\'s refresh token to its DPoP key: refreshing without the key fails', async () => {
      const dpop = oidc.getDPoPHandle(publicRp.config, await oidc.randomDPoPKeyPair('EdDSA'));
      const { url, checks } = await publicRp.authorization({ scope: 'openid offline_access' });
      const back = await drive(new CookieClient(server.url), url, frank);
      const tokens = await oidc.authorizationCodeGrant(publicRp.config, new URL(back), checks, undefined, { DPoP: dpop });
      assert.ok(tokens.refresh_token);
      await rejectsWith(oidc.refreshTokenGrant(publicRp.config, tokens.refresh_token), 'invalid_grant', 'no proof');
      const other = oidc.getDPoPHandle(publicRp.config, await oidc.randomDPoPKeyPair('ES256'));
      await rejectsWith(oidc.refreshTokenGrant(publicRp.config, tokens.refresh_token, undefined, { DPoP: other }), 'invalid_grant', 'another key');
      const refreshed = await oidc.refreshTokenGrant(publicRp.config, tokens.refresh_token, undefined, { DPoP: dpop });
      assert.equal(refreshed.token_type.toLowerCase(), 'dpop');
    });
  });

  describe('device authorization grant', () => {
    /** Opens verification_uri_complete and goes through the code confirmation page. */
    async function openConfirmPage(browser: CookieClient, device: oidc.DeviceAuthorizationResponse) {
      // The page auto-submits the code with a script; a browser without script submits the same form.
      const autoSubmit = await browser.follow(device.verification_uri_complete!);
      assert.equal(autoSubmit.status, 200);
      const confirm = await browser.submit(autoSubmit, '/device');
      assert.equal(confirm.status, 200);
      assert.match(confirm.body, /Living Room TV/);
      assert.ok(confirm.body.includes(device.user_code), 'shows the code to compare with the device');
      return confirm;
    }

    const poll = (device: oidc.DeviceAuthorizationResponse) =>
      oidc.pollDeviceAuthorizationGrant(tv.config, { ...device, interval: 0.05 }, undefined, { signal: AbortSignal.timeout(10_000) });

    it('signs a device in: the user opens the link, confirms the code, signs in and consents; the device gets tokens', async () => {
      const device = await oidc.initiateDeviceAuthorization(tv.config, { scope: 'openid email offline_access' });
      assert.equal(device.verification_uri, `${server.url}/device`);
      assert.match(device.user_code, /^[A-Z]{4}-[A-Z]{4}$/);

      // Before the user acts, the device is told to wait.
      await rejectsWith(oidc.genericGrantRequest(tv.config, DEVICE_CODE, { device_code: device.device_code }), 'authorization_pending');

      const browser = new CookieClient(server.url);
      const confirm = await openConfirmPage(browser, device);
      const loginPage = await browser.submit(confirm, '/device');
      assert.match(loginPage.body, /\/login"/, 'asks the user to sign in');
      const consent = await browser.submit(loginPage, '/login', frank);
      assert.match(consent.body, /\/confirm"/);
      assert.ok(consent.body.includes('See your email address'));
      const done = await browser.submit(consent, '/confirm');
      assert.equal(done.status, 200);
      assert.match(done.body, /Device connected/);

      const tokens = await poll(device);
      const claims = tokens.claims()!;
      assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
      assert.deepEqual(claims.amr, ['pwd']);
      assert.ok(tokens.refresh_token);
      const info = await oidc.fetchUserInfo(tv.config, tokens.access_token, claims.sub);
      assert.equal(info.email, frank.email);

      // The device code is single use.
      await rejectsWith(oidc.genericGrantRequest(tv.config, DEVICE_CODE, { device_code: device.device_code }), 'invalid_grant');
    });

    it('gives a device whose client needs mfa no tokens for a password-only sign-in', async () => {
      const strictTv = await RelyingParty.create(server.url, await server.addClient({
        name: 'Living Room TV', public: true, grantTypes: [DEVICE_CODE], minimumAcr: 'urn:latchkey:acr:mfa',
      }));
      const device = await oidc.initiateDeviceAuthorization(strictTv.config, { scope: 'openid' });
      const browser = new CookieClient(server.url);
      const confirm = await openConfirmPage(browser, device);
      const loginPage = await browser.submit(confirm, '/device');
      assert.match(loginPage.body, /\/login"/);
      const answer = await browser.submit(loginPage, '/login', frank);
      assert.doesNotMatch(answer.body, /Device connected/);
      assert.match(answer.body, /Two-step verification needed/);
      assert.doesNotMatch((await browser.submit(answer, '/unmet')).body, /Device connected/);
      await rejectsWith(
        oidc.pollDeviceAuthorizationGrant(strictTv.config, { ...device, interval: 0.05 }, undefined, { signal: AbortSignal.timeout(10_000) }),
        'unmet_authentication_requirements',
      );
    });

    it('gives the device access_denied when the user cancels on the confirmation page', async () => {
      const device = await oidc.initiateDeviceAuthorization(tv.config, { scope: 'openid' });
      const browser = new CookieClient(server.url);
      const confirm = await openConfirmPage(browser, device);
      const cancelled = await browser.submit(confirm, '/device', { abort: 'yes' });
      assert.doesNotMatch(cancelled.body, /\/login"/, 'no sign-in after cancelling');
      await rejectsWith(poll(device), 'access_denied');
    });

    it('refuses a wrong user code on the input page', async () => {
      const device = await oidc.initiateDeviceAuthorization(tv.config, { scope: 'openid' });
      const browser = new CookieClient(server.url);
      const input = await browser.follow(device.verification_uri);
      assert.match(input.body, /Enter the code shown on your device/);
      const wrong = await browser.submit(input, '/device', { user_code: 'BCDF-GHJK' });
      assert.match(wrong.body, /That code is not right or has expired/);
      assert.doesNotMatch(wrong.body, /\/login"/);
      await rejectsWith(oidc.genericGrantRequest(tv.config, DEVICE_CODE, { device_code: device.device_code }), 'authorization_pending');
    });
  });
});
