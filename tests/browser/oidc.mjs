// Browser end to end for OpenID Connect sign-in (authorization code + PKCE) through passlink's
// hosted login page, driven by an unmodified standard relying-party library (openid-client v6).
// It proves that an app registered through ZITADEL's API (ProjectService/CreateProject,
// ApplicationService/CreateApplication) can sign people in with a passkey: openid-client
// discovers passlink, sends the browser to /oauth/v2/authorize, passlink's login page
// (/ui/login?authRequest=V2_…) signs the person in on a Chromium virtual authenticator (button,
// or passkey autofill), the browser lands on the test's own redirect URI with a code, and the
// library redeems it (state, nonce, PKCE, ID token signature through the JWKS, iss, aud), reads
// userinfo, refreshes, and logs out through end_session. Also: login_hint, German labels
// (ui_locales=de and Accept-Language), a confidential client (client_secret_basic), a wrong
// PKCE verifier, a replayed code, and an unregistered redirect_uri (an error page, no redirect).
//
//   PASSLINK_URL=http://localhost:PORT PASSLINK_TOKEN=<IAM_OWNER PAT> node tests/browser/oidc.mjs
//
// (`cargo run -q -p passlink-testkit --bin external-suites -- browser` runs it with the other
// browser scripts against a passlink it starts.) Environment and reporting: harness.mjs. Prints
// one PASS/FAIL line per check and exits 1 if any failed.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import * as client from 'openid-client';

import {
  ARTIFACTS, BASE, TOKEN, UI_TIMEOUT, check, fail, finish, foreignRequests, launchChromium, openPage as openPageIn,
  rand, rest, step,
} from './harness.mjs';

const SCOPE = 'openid profile email offline_access';
const BUTTON_EN = 'Sign in with a passkey';
const BUTTON_DE = 'Mit Passkey anmelden';

// ---- the relying party's redirect URIs: a real HTTP server on localhost -----------------------

/// Records every request it receives (as full URLs on http://localhost:PORT) and answers "done".
async function startRelyingParty() {
  const hits = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, `http://localhost:${server.address().port}`);
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    hits.push(url);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end('done');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://localhost:${server.address().port}`;
  return {
    origin,
    callback: `${origin}/callback`,
    loggedOut: `${origin}/logged-out`,
    unregistered: `${origin}/unregistered`,
    hits,
    /// The first request to `pathname` received after the `since`-th request.
    after: (since, pathname) => hits.slice(since).find((u) => u.pathname === pathname) || null,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

// ---- ZITADEL's API as the admin (Connect unary JSON) -----------------------------------------

async function connect(method, body) {
  const res = await fetch(`${BASE}/${method}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TOKEN}`,
      'content-type': 'application/json',
      accept: 'application/json',
      'connect-protocol-version': '1',
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} -> ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function createApp(projectId, name, oidcConfiguration) {
  const app = await connect('zitadel.application.v2.ApplicationService/CreateApplication', { projectId, name, oidcConfiguration });
  const oidc = app.oidcConfiguration || {};
  if (!app.applicationId || !oidc.clientId) throw new Error(`CreateApplication answered ${JSON.stringify(app)}`);
  return { applicationId: app.applicationId, clientId: oidc.clientId, clientSecret: oidc.clientSecret };
}

/// A person with a username (the login_hint), a display name, a language and a verified email.
async function person(orgId, givenName, familyName, preferredLanguage) {
  const username = `${givenName.toLowerCase()}-${rand()}`;
  const email = `${username}@example.com`;
  const displayName = `${givenName} ${familyName}`;
  const user = await rest('POST', '/v2/users/human', {
    organization: { orgId },
    username,
    profile: { givenName, familyName, displayName, preferredLanguage },
    email: { email, isVerified: true },
  });
  if (!user.userId) throw new Error(`no userId in ${JSON.stringify(user)}`);
  return { userId: user.userId, username, email, givenName, familyName, name: displayName, preferredLanguage };
}

// ---- Chromium --------------------------------------------------------------------------------

let context;
let closeBrowser = async () => {};
let rp = null;

// Script errors and console errors of every page, with the page they happened on. The 400 of the
// unregistered-redirect page is expected there and dropped (see `expectedConsole`).
const consoleErrors = [];
let expectedConsole = null;

function watchConsole(page) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const line = `${m.text()} [${page.url()}]`;
    if (expectedConsole && expectedConsole.test(line)) return;
    consoleErrors.push(line);
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message} [${page.url()}]`));
}

// Passkey autofill on the page can be switched off from here: while `autofill` is false, a
// conditional (autofill) WebAuthn request stays pending until the page aborts it — as when the
// person ignores the suggestions — so the button is the way in. While true, the request goes to
// the virtual authenticator, which answers it by itself (as if the person picked the passkey).
let autofill = false;
let conditionalRequests = 0;

async function openPage() {
  const opened = await openPageIn(context);
  watchConsole(opened.page);
  await opened.page.exposeFunction('__passlinkTestAutofill', () => {
    conditionalRequests++;
    return autofill;
  });
  await opened.page.addInitScript(() => {
    if (!navigator.credentials || typeof navigator.credentials.get !== 'function') return;
    const realGet = navigator.credentials.get.bind(navigator.credentials);
    navigator.credentials.get = function (options) {
      if (!options || options.mediation !== 'conditional') return realGet(options);
      return window.__passlinkTestAutofill().then((on) => {
        if (on) return realGet(options);
        return new Promise((_, reject) => {
          const signal = options.signal;
          if (!signal) return;
          const abort = () => reject(signal.reason || new DOMException('The operation was aborted.', 'AbortError'));
          if (signal.aborted) abort();
          else signal.addEventListener('abort', abort, { once: true });
        });
      });
    };
  });
  // Which credential each assertion used, as the authenticator reports it.
  opened.asserted = [];
  opened.cdp.on('WebAuthn.credentialAsserted', (e) => {
    if (e.authenticatorId === opened.authenticatorId) opened.asserted.push(e.credential.credentialId);
  });
  return opened;
}

async function linkURL(user, orgId) {
  const r = await rest('POST', `/v2/users/${user.userId}/passkeys/registration_link`, { returnCode: {} });
  const q = new URLSearchParams({ userID: user.userId, orgID: orgId, codeID: r.code.id, code: r.code.code });
  return `${BASE}/ui/passkey/register?${q}`;
}

/// The registration link passlink emails (sendLink with the default template), read from the
/// SMTP test server's mail directory (MAIL_DIR; one JSON file per message with the raw data).
async function emailedLinkURL(user) {
  const dir = process.env.MAIL_DIR;
  if (!dir) throw new Error('MAIL_DIR is not set: the suite runs passlink with an SMTP test server');
  await rest('POST', `/v2/users/${user.userId}/passkeys/registration_link`, { sendLink: {} });
  const deadline = Date.now() + UI_TIMEOUT;
  while (Date.now() < deadline) {
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      const m = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
      if (!(m.rcpt_tos || []).includes(user.email)) continue;
      const found = /https?:\/\/[^\s"<>]+\/ui\/passkey\/register\?[^\s"<>]+/.exec(m.data);
      if (!found) throw new Error(`no registration link in the email to ${user.email}`);
      return found[0].replace(/&amp;/g, '&');
    }
    await sleep(100);
  }
  throw new Error(`no email reached ${user.email}`);
}

async function enrollVia(page, url) {
  await page.goto(url);
  await page.locator('#ready').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await page.locator('#success:not([hidden]), #error:not([hidden])').first().waitFor({ state: 'visible', timeout: UI_TIMEOUT });
  if (await page.locator('#error').isVisible()) {
    throw new Error(`error screen: ${(await page.locator('#error').innerText()).replace(/\s+/g, ' ')}`);
  }
}

const text = async (locator) => ((await locator.innerText().catch(() => '')) || '').replace(/\s+/g, ' ').trim();

async function visible(page, selector) {
  try {
    return await page.locator(selector).first().isVisible();
  } catch {
    return false; // mid-navigation
  }
}

/// What the page shows, for error messages.
async function describe(page) {
  try {
    const state = await page.locator('.state:not([hidden])').first().getAttribute('id', { timeout: 500 }).catch(() => null);
    const buttons = await page.locator('button:visible').allInnerTexts().catch(() => []);
    return `${page.url()} state=${state} buttons=${JSON.stringify(buttons)} text="${(await text(page.locator('body'))).slice(0, 200)}"`;
  } catch {
    return page.url();
  }
}

/// Opens the authorization request in the browser and checks it lands on the hosted login page
/// (a 302 from /oauth/v2/authorize to /ui/login?authRequest=V2_<digits>); returns that URL.
async function openAuthorize(page, url) {
  const resp = await page.goto(url.href, { waitUntil: 'commit' });
  if (!resp) throw new Error('no response');
  const landed = new URL(resp.url());
  const authRequest = landed.searchParams.get('authRequest') || '';
  if (landed.origin !== BASE || landed.pathname !== '/ui/login' || !/^V2_\d+$/.test(authRequest)) {
    throw new Error(`authorize led to ${resp.status()} ${resp.url()}, not ${BASE}/ui/login?authRequest=V2_<digits>`);
  }
  if (resp.status() !== 200) throw new Error(`the login page answered ${resp.status()}`);
  const from = resp.request().redirectedFrom();
  const hop = from && (await from.response());
  if (!from || !from.url().startsWith(`${BASE}/oauth/v2/authorize?`) || !hop || hop.status() !== 302) {
    throw new Error(`the login page was not reached by a 302 from /oauth/v2/authorize (${from ? from.url() : 'no redirect'})`);
  }
  return landed;
}

/// Waits on the login page's start screen (#ready).
async function readyScreen(page) {
  await page.locator('.state:not([hidden])').first().waitFor({ state: 'visible', timeout: UI_TIMEOUT });
  const id = await page.locator('.state:not([hidden])').first().getAttribute('id');
  if (id !== 'ready') throw new Error(`not the start screen: ${await describe(page)}`);
}

/// One trip through the hosted login page: opens the authorization request, lets the page sign
/// in — clicking the button labelled `button` when the start screen shows it, or not clicking at
/// all when `button` is null — and returns the URL the relying party's callback received.
async function viaLoginPage({ page, asserted }, url, { button = BUTTON_EN, before = null } = {}) {
  const since = rp.hits.length;
  asserted.length = 0;
  const landed = await openAuthorize(page, url);
  if (before) {
    await readyScreen(page);
    await before(page);
  }
  let clicked = false;
  const deadline = Date.now() + UI_TIMEOUT;
  while (Date.now() < deadline) {
    const hit = rp.after(since, '/callback');
    if (hit) return { callback: hit, clicked, landed, asserted: [...asserted] };
    if (page.url().startsWith(`${BASE}/`)) {
      if (await visible(page, '#error')) throw new Error(`error screen: ${await text(page.locator('#error'))}`);
      if (button && !clicked && (await visible(page, '#ready'))) {
        const b = page.getByRole('button', { name: button, exact: true });
        if (await b.isVisible().catch(() => false)) {
          await b.click({ timeout: 2000 });
          clicked = true;
        }
      }
    }
    await sleep(100);
  }
  throw new Error(`no callback within ${UI_TIMEOUT} ms; the page shows ${await describe(page)}`);
}

// ---- OpenID Connect --------------------------------------------------------------------------

/// The relying party's configuration through discovery (http: passlink runs on localhost here).
/// `enableNonRepudiationChecks` makes the library verify the ID token's signature through the
/// JWKS also when the token comes straight from the token endpoint.
function discover(clientId, auth = client.None()) {
  return client.discovery(new URL(BASE), clientId, undefined, auth, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
}

async function authRequest(config, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: rp.callback,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

function redeem(config, req, callback, verifier = req.verifier) {
  return client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: req.state,
    expectedNonce: req.nonce,
  });
}

/// The OAuth error code of a failed library call (token endpoint body, or a 401 challenge).
function oauthError(e) {
  if (!e) return undefined;
  if (e.error) return e.error;
  if (Array.isArray(e.cause)) return e.cause.map((c) => c.parameters && c.parameters.error).find(Boolean);
  return undefined;
}

async function expectOAuthError(promise, codes, what) {
  let result;
  try {
    result = await promise;
  } catch (e) {
    const code = oauthError(e);
    if (!codes.includes(code)) throw new Error(`${what}: expected ${codes.join(' or ')}, got ${code || (e && e.message)}`);
    return code;
  }
  throw new Error(`${what}: accepted (${JSON.stringify(result).slice(0, 120)})`);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const jwtPart = (jwt, i) => JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString('utf8'));

/// Verifies an RS256 JWT against the JWKS by hand (node:crypto), independent of the library.
function verifyRS256(jwt, jwks) {
  const [h, p, s] = jwt.split('.');
  const header = jwtPart(jwt, 0);
  if (header.alg !== 'RS256') throw new Error(`ID token alg ${header.alg}`);
  const candidates = (jwks.keys || []).filter((k) => k.kty === 'RSA' && (!header.kid || k.kid === header.kid));
  if (!candidates.length) throw new Error(`no RSA key ${header.kid} in the JWKS`);
  const ok = candidates.some((jwk) =>
    crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'))
  );
  if (!ok) throw new Error('the ID token signature does not verify against the JWKS');
}

/// Checks passlink's ID token claims beyond what the library checks (it checks iss, aud, azp
/// when several audiences, exp, iat, nonce and the signature).
async function checkIdToken(config, tokens, clientId, user, since) {
  const claims = tokens.claims();
  if (!claims) throw new Error('no ID token');
  if (user && claims.sub !== user.userId) throw new Error(`sub ${claims.sub}, expected ${user.userId}`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(clientId)) throw new Error(`aud ${JSON.stringify(claims.aud)} lacks ${clientId}`);
  if (claims.azp !== clientId) throw new Error(`azp ${claims.azp}, expected ${clientId}`);
  if (!Array.isArray(claims.amr) || !claims.amr.includes('mfa') || !claims.amr.includes('user')) {
    throw new Error(`amr ${JSON.stringify(claims.amr)}, expected ["user","mfa"]`);
  }
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.auth_time !== 'number' || claims.auth_time < since - 5 || claims.auth_time > now + 5) {
    throw new Error(`auth_time ${claims.auth_time} is not the sign-in's time (${since}..${now})`);
  }
  const atHash = b64url(crypto.createHash('sha256').update(tokens.access_token).digest().subarray(0, 16));
  if (claims.at_hash !== atHash) throw new Error(`at_hash ${claims.at_hash}, expected ${atHash}`);
  const jwks = await (await fetch(config.serverMetadata().jwks_uri)).json();
  verifyRS256(tokens.id_token, jwks);
  return claims;
}

async function userinfoStatus(config, accessToken) {
  const res = await fetch(config.serverMetadata().userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}` } });
  return res.status;
}

// ---- the run ---------------------------------------------------------------------------------

async function main() {
  rp = await startRelyingParty();
  const browser = await launchChromium();
  context = browser.context;
  closeBrowser = browser.close;

  const org = await rest('POST', '/v2/organizations', { name: `browser-oidc-${rand()}` });
  const orgId = org.organizationId;

  // ---- the apps: a public client (user agent, PKCE, no secret) and a confidential one ----
  let pub;
  let conf;
  const registered = await step('register: a project, a public OIDC app and a confidential one through ZITADEL\'s API', async () => {
    const project = await connect('zitadel.project.v2.ProjectService/CreateProject', { organizationId: orgId, name: `oidc-e2e-${rand()}` });
    if (!project.projectId) throw new Error(`CreateProject answered ${JSON.stringify(project)}`);
    const common = {
      redirectUris: [rp.callback],
      responseTypes: ['OIDC_RESPONSE_TYPE_CODE'],
      grantTypes: ['OIDC_GRANT_TYPE_AUTHORIZATION_CODE', 'OIDC_GRANT_TYPE_REFRESH_TOKEN'],
      postLogoutRedirectUris: [rp.loggedOut],
      developmentMode: true,
    };
    pub = await createApp(project.projectId, 'spa', {
      ...common,
      applicationType: 'OIDC_APP_TYPE_USER_AGENT',
      authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE',
    });
    if (pub.clientSecret) throw new Error('a client secret for auth method NONE');
    conf = await createApp(project.projectId, 'web', { ...common, authMethodType: 'OIDC_AUTH_METHOD_TYPE_BASIC' });
    if (!conf.clientSecret) throw new Error('no client secret for auth method BASIC');
  });
  if (!registered) return;

  let config;
  const discovered = await step('discovery: issuer is PASSLINK_URL, S256 only, the code flow\'s endpoints; openid-client accepts it', async () => {
    const meta = await (await fetch(`${BASE}/.well-known/openid-configuration`)).json();
    if (meta.issuer !== BASE) throw new Error(`issuer ${meta.issuer}`);
    if (JSON.stringify(meta.code_challenge_methods_supported) !== '["S256"]') {
      throw new Error(`code_challenge_methods_supported ${JSON.stringify(meta.code_challenge_methods_supported)}`);
    }
    if (!(meta.response_types_supported || []).includes('code')) throw new Error(`response_types_supported ${JSON.stringify(meta.response_types_supported)}`);
    for (const [k, v] of [
      ['authorization_endpoint', '/oauth/v2/authorize'],
      ['token_endpoint', '/oauth/v2/token'],
      ['userinfo_endpoint', '/oidc/v1/userinfo'],
      ['end_session_endpoint', '/oidc/v1/end_session'],
    ]) {
      if (meta[k] !== `${BASE}${v}`) throw new Error(`${k} ${meta[k]}`);
    }
    config = await discover(pub.clientId);
  });
  if (!discovered) return;

  // ---- people and their passkeys: Ada first, Grace later, on one authenticator ----
  const ada = await person(orgId, 'Ada', 'Lovelace', 'en');
  const grace = await person(orgId, 'Grace', 'Hopper', 'en');
  const opened = await openPage();
  const { page, cdp, authenticatorId } = opened;
  const credOf = new Map(); // credentialId -> user
  const enroll = async (user, { emailed = false } = {}) => {
    await enrollVia(page, emailed ? await emailedLinkURL(user) : await linkURL(user, orgId));
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    const fresh = credentials.filter((c) => !credOf.has(c.credentialId));
    if (fresh.length !== 1 || !fresh[0].isResidentCredential) throw new Error(JSON.stringify(credentials));
    credOf.set(fresh[0].credentialId, user);
  };
  if (!(await step('enroll: Ada creates a passkey via the emailed link', () => enroll(ada, { emailed: true })))) return;

  /// The user whose credential the authenticator asserted, or null when it cannot tell: with
  /// several resident credentials and no allow list, Chromium's virtual authenticator reports
  /// (and counts) every credential it collects an assertion from, not only the one it returns.
  const assertedUser = (asserted) => {
    const used = new Set(asserted);
    return used.size === 1 ? credOf.get([...used][0]) || null : null;
  };
  const sameAsAsserted = (flow, sub) => {
    const who = assertedUser(flow.asserted);
    if (who && who.userId !== sub) throw new Error(`sub ${sub}, but the authenticator used ${who.username}'s passkey`);
  };

  // ---- 1. the button, one passkey: tokens, userinfo, refresh ----
  let conditionalAvailable = false;
  let tokens1;
  const req1 = await authRequest(config);
  let flow1;
  const button = await step('button: authorize -> login page -> "Sign in with a passkey" -> the callback gets code and state', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    flow1 = await viaLoginPage(opened, req1.url, {
      before: async (p) => {
        const field = await p.locator('#username').getAttribute('autocomplete', { timeout: 2000 }).catch(() => null);
        check('login page: the username field asks for passkey autofill', field === 'username webauthn', `autocomplete=${field}`);
        conditionalAvailable = await p.evaluate(() =>
          window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable ? PublicKeyCredential.isConditionalMediationAvailable() : false
        );
        await p.screenshot({ path: path.join(ARTIFACTS, 'oidc-login-ready.png'), fullPage: true });
      },
    });
    if (!flow1.clicked) throw new Error('signed in without the button');
    flow1.t0 = t0;
    const got = flow1.callback.searchParams;
    if (!got.get('code') || got.get('state') !== req1.state) throw new Error(`callback ${flow1.callback}`);
    if (flow1.callback.origin + flow1.callback.pathname !== rp.callback) throw new Error(`callback ${flow1.callback}`);
  });
  if (button) {
    await step('button: openid-client redeems the code (PKCE, state, nonce, signature, iss, aud); sub is Ada, amr has mfa', async () => {
      tokens1 = await redeem(config, req1, flow1.callback);
      await checkIdToken(config, tokens1, pub.clientId, ada, flow1.t0);
      if (!tokens1.refresh_token) throw new Error('no refresh token for scope offline_access');
      if (String(tokens1.token_type).toLowerCase() !== 'bearer') throw new Error(`token_type ${tokens1.token_type}`);
    });
  }
  if (tokens1) {
    await step('userinfo: sub, email (verified), profile claims of Ada', async () => {
      const info = await client.fetchUserInfo(config, tokens1.access_token, ada.userId);
      const want = {
        sub: ada.userId,
        email: ada.email,
        email_verified: true,
        given_name: ada.givenName,
        family_name: ada.familyName,
        name: ada.name,
        preferred_username: ada.username,
        locale: ada.preferredLanguage,
      };
      const wrong = Object.entries(want).filter(([k, v]) => info[k] !== v);
      if (wrong.length) throw new Error(wrong.map(([k, v]) => `${k}=${JSON.stringify(info[k])} (want ${JSON.stringify(v)})`).join(', '));
    });
    await step('refresh: refreshTokenGrant gives new tokens that work; the old refresh token is then refused', async () => {
      const old = tokens1.refresh_token;
      const fresh = await client.refreshTokenGrant(config, old);
      if (!fresh.access_token || !fresh.refresh_token) throw new Error(`refresh answered ${Object.keys(fresh).join(',')}`);
      if (fresh.refresh_token === old) throw new Error('the same refresh token again (no rotation)');
      const info = await client.fetchUserInfo(config, fresh.access_token, ada.userId);
      if (info.sub !== ada.userId) throw new Error(`userinfo sub ${info.sub}`);
      if (fresh.id_token && fresh.claims().sub !== ada.userId) throw new Error(`refreshed ID token sub ${fresh.claims().sub}`);
      await expectOAuthError(client.refreshTokenGrant(config, old), ['invalid_grant'], 'the old refresh token');
    });
    // Last: a replayed code may revoke what the code gave (RFC 6749 §4.1.2; passlink does).
    await step('code: the same code a second time is refused (invalid_grant)', () =>
      expectOAuthError(redeem(config, req1, flow1.callback), ['invalid_grant'], 'the replayed code')
    );
  }

  // ---- PKCE: a wrong code_verifier is refused ----
  await step('pkce: a code redeemed with the wrong code_verifier is refused (invalid_grant)', async () => {
    const req = await authRequest(config);
    const flow = await viaLoginPage(opened, req.url);
    await expectOAuthError(redeem(config, req, flow.callback, client.randomPKCECodeVerifier()), ['invalid_grant'], 'the wrong verifier');
  });

  // ---- a phone-sized screen and the keyboard only: no scrolling sideways, Tab to the button,
  //      Enter signs in ----
  await step('phone + keyboard: at 360 px nothing scrolls sideways; Tab reaches the button and Enter signs in', async () => {
    const req = await authRequest(config);
    await page.setViewportSize({ width: 360, height: 740 });
    try {
      const flow = await viaLoginPage(opened, req.url, {
        button: null,
        before: async (p) => {
          const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          if (overflow > 0) throw new Error(`the login page overflows a 360 px screen by ${overflow}px`);
          const live = await p.locator('#status[role="status"][aria-live="polite"]').count();
          if (live !== 1) throw new Error('no live region announces the steps to screen readers');
          let focused = '';
          for (let i = 0; i < 6 && focused !== 'signin'; i++) {
            await p.keyboard.press('Tab');
            focused = await p.evaluate(() => (document.activeElement && document.activeElement.id) || '');
          }
          if (focused !== 'signin') throw new Error('Tab never reached the sign-in button');
          await p.screenshot({ path: path.join(ARTIFACTS, 'oidc-login-360.png'), fullPage: true });
          await p.keyboard.press('Enter');
        },
      });
      await redeem(config, req, flow.callback);
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });

  // ---- 2. two passkeys on the authenticator, username-less through autofill ----
  const enrolledGrace = await step('enroll: Grace creates a passkey on the same authenticator', () => enroll(grace));
  let defaultUser = null; // whom the authenticator picks when the page does not name anyone
  if (enrolledGrace && conditionalAvailable) {
    await step('autofill: with two passkeys, the callback arrives without a click; sub is the user whose passkey was used', async () => {
      const req = await authRequest(config);
      const requests0 = conditionalRequests;
      autofill = true;
      let flow;
      try {
        flow = await viaLoginPage(opened, req.url, { button: null });
      } finally {
        autofill = false;
      }
      if (conditionalRequests === requests0) throw new Error('the page made no autofill (conditional) request');
      const tokens = await redeem(config, req, flow.callback);
      const sub = tokens.claims().sub;
      const who = [ada, grace].find((u) => u.userId === sub);
      if (!who) throw new Error(`sub ${sub} is neither Ada nor Grace`);
      sameAsAsserted(flow, sub);
      defaultUser = assertedUser(flow.asserted) || who;
    });
  } else if (enrolledGrace) {
    console.log('SKIP autofill: this Chromium reports no conditional mediation');
  }

  // ---- 3. login_hint names the other person: that person's passkey signs in ----
  if (enrolledGrace) {
    // The hint names whoever the authenticator would not pick by itself, so an ignored hint fails.
    const hinted = defaultUser === grace ? ada : grace;
    await step(`login_hint: login_hint=<${hinted === ada ? 'Ada' : 'Grace'}'s username> signs in as that user`, async () => {
      const req = await authRequest(config, { login_hint: hinted.username });
      const flow = await viaLoginPage(opened, req.url);
      const tokens = await redeem(config, req, flow.callback);
      const sub = tokens.claims().sub;
      if (sub !== hinted.userId) throw new Error(`sub ${sub}, expected ${hinted.userId} (${hinted.username})`);
      sameAsAsserted(flow, sub);
    });
  }

  // ---- 4. German: ui_locales=de, and a browser that asks for German ----
  await step(`ui_locales=de: the button reads "${BUTTON_DE}", and it signs in`, async () => {
    const req = await authRequest(config, { ui_locales: 'de' });
    const flow = await viaLoginPage(opened, req.url, {
      button: BUTTON_DE,
      before: async (p) => {
        const names = await p.locator('button:visible').allInnerTexts();
        if (!names.map((n) => n.trim()).includes(BUTTON_DE) || names.some((n) => n.includes(BUTTON_EN))) {
          throw new Error(`buttons ${JSON.stringify(names)}`);
        }
        await p.screenshot({ path: path.join(ARTIFACTS, 'oidc-login-de.png'), fullPage: true });
      },
    });
    const tokens = await redeem(config, req, flow.callback);
    sameAsAsserted(flow, tokens.claims().sub);
  });
  {
    const { page: dePage, cdp: deCdp } = await openPage();
    await step(`Accept-Language de: the button reads "${BUTTON_DE}"`, async () => {
      const userAgent = await dePage.evaluate(() => navigator.userAgent);
      await deCdp.send('Network.setUserAgentOverride', { userAgent, acceptLanguage: 'de-DE,de' });
      const req = await authRequest(config);
      await openAuthorize(dePage, req.url);
      await readyScreen(dePage);
      const b = dePage.getByRole('button', { name: BUTTON_DE, exact: true });
      if (!(await b.isVisible())) throw new Error(`buttons ${JSON.stringify(await dePage.locator('button:visible').allInnerTexts())}`);
    });
    await dePage.close();
  }

  // ---- 5. a confidential client: client_secret_basic ----
  {
    let withSecret;
    let req;
    let flow;
    let t0;
    const refused = await step('confidential: the code is not redeemable without the client secret (invalid_client)', async () => {
      const noSecret = await discover(conf.clientId);
      withSecret = await discover(conf.clientId, client.ClientSecretBasic(conf.clientSecret));
      req = await authRequest(withSecret, { scope: 'openid profile email' });
      t0 = Math.floor(Date.now() / 1000);
      flow = await viaLoginPage(opened, req.url);
      await expectOAuthError(redeem(noSecret, req, flow.callback), ['invalid_client'], 'a token request without the secret');
    });
    // The same code, now with the secret (the failed client authentication must not spend it).
    if (refused) {
      await step('confidential: client_secret_basic redeems the code; ID token for this client; userinfo', async () => {
        const tokens = await redeem(withSecret, req, flow.callback);
        const who = [ada, grace].find((u) => u.userId === tokens.claims().sub);
        if (!who) throw new Error(`sub ${tokens.claims().sub} is neither Ada nor Grace`);
        sameAsAsserted(flow, who.userId);
        await checkIdToken(withSecret, tokens, conf.clientId, who, t0);
        const info = await client.fetchUserInfo(withSecret, tokens.access_token, who.userId);
        if (info.email !== who.email) throw new Error(`userinfo email ${info.email}`);
      });
    }
  }

  // ---- 6. end_session: back to the app, and the session's tokens are dead ----
  await step('end_session: 302 to the registered post_logout_redirect_uri with state; then userinfo 401 and the refresh token refused', async () => {
    const req = await authRequest(config);
    const flow = await viaLoginPage(opened, req.url);
    const tokens = await redeem(config, req, flow.callback);
    if (!tokens.refresh_token) throw new Error('no refresh token');
    const before = await userinfoStatus(config, tokens.access_token);
    if (before !== 200) throw new Error(`userinfo before logout: ${before}`);
    const state = client.randomState();
    const endUrl = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: rp.loggedOut, state });
    const since = rp.hits.length;
    const resp = await page.goto(endUrl.href, { waitUntil: 'commit' });
    const from = resp && resp.request().redirectedFrom();
    const hop = from && (await from.response());
    if (!from || !from.url().startsWith(`${BASE}/oidc/v1/end_session?`) || !hop || hop.status() !== 302) {
      throw new Error(`end_session did not redirect (${resp ? `${resp.status()} ${resp.url()}` : 'no response'})`);
    }
    const back = rp.after(since, '/logged-out');
    if (!back || back.searchParams.get('state') !== state) throw new Error(`post-logout redirect ${back || resp.url()}`);
    const after = await userinfoStatus(config, tokens.access_token);
    if (after !== 401) throw new Error(`userinfo with the old access token: ${after}`);
    await expectOAuthError(client.refreshTokenGrant(config, tokens.refresh_token), ['invalid_grant'], 'the refresh token after logout');
  });

  // ---- 7. an unregistered redirect_uri: an error page, no redirect ----
  await step('redirect_uri: an unregistered redirect_uri gets an error page (400), and the browser is not sent there', async () => {
    const req = await authRequest(config, { redirect_uri: rp.unregistered });
    const since = rp.hits.length;
    expectedConsole = /status of 400/;
    let resp;
    try {
      resp = await page.goto(req.url.href);
      await sleep(500);
    } finally {
      expectedConsole = null;
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'oidc-bad-redirect.png'), fullPage: true });
    if (rp.hits.length !== since) throw new Error(`the browser went to ${rp.hits[since]}`);
    if (!resp || resp.status() !== 400) throw new Error(`status ${resp && resp.status()} at ${resp && resp.url()}`);
    if (!page.url().startsWith(`${BASE}/`)) throw new Error(`the browser is at ${page.url()}`);
    if (!/^text\/html/.test(resp.headers()['content-type'] || '')) throw new Error(`content-type ${resp.headers()['content-type']}`);
    if (!(await visible(page, '#error'))) throw new Error(`no #error screen: ${await describe(page)}`);
    const said = await text(page.locator('#error'));
    if (said.length < 10 || /^[{[]/.test(said)) throw new Error(`error text: ${said}`);
  });

  await page.close();
  check('console: no script or console errors on the pages', consoleErrors.length === 0, consoleErrors.join(' | '));
  const foreign = foreignRequests.filter((u) => !u.startsWith(`${rp.origin}/`));
  check('network: the pages loaded nothing from other origins (only passlink, and the app\'s redirect URIs)', foreign.length === 0, foreign.join(', '));
}

try {
  await main();
} catch (e) {
  fail('browser oidc e2e', e && e.stack ? e.stack : String(e));
} finally {
  await closeBrowser();
  if (rp) rp.close();
}
finish('browser oidc');
