// Browser end to end for the demo sign-in page: two people enroll a passkey through passlink's
// default registration link on the same virtual authenticator (resident keys) and sign in
// username-less on /ui/passkey/login — through autofill (conditional mediation, which Chromium's
// virtual authenticator answers by itself) and with the "Sign in with a passkey" button; the
// screen must name the user the server signed in. Also: a cancelled prompt with "Try again",
// and a passkey the server no longer knows.
//
//   PASSLINK_URL=http://localhost:PORT PASSLINK_TOKEN=<IAM_OWNER PAT> node tests/browser/login.mjs
//
// Environment and reporting: harness.mjs (shared with enroll.mjs). Prints one PASS/FAIL line per
// check and exits 1 if any failed.

import path from 'node:path';

import {
  ARTIFACTS, BASE, UI_TIMEOUT, check, consoleLines, fail, finish, foreignRequests, launchChromium, newUser,
  openPage as openPageIn, outcome, rand, rest, step,
} from './harness.mjs';

async function linkURL(user, orgId) {
  const r = await rest('POST', `/v2/users/${user.userId}/passkeys/registration_link`, { returnCode: {} });
  const q = new URLSearchParams({ userID: user.userId, orgID: orgId, codeID: r.code.id, code: r.code.code });
  return `${BASE}/ui/passkey/register?${q}`;
}

let context;
let closeBrowser = async () => {};

const openPage = () => openPageIn(context);

async function enrollVia(page, url) {
  await page.goto(url);
  await page.locator('#ready').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
  await page.getByRole('button', { name: 'Create passkey' }).click();
  await outcome(page);
}

// Opens the sign-in page, clicks the button, waits for the outcome; returns the success text or
// throws with the error screen's text.
async function openLogin(page) {
  await page.goto(`${BASE}/ui/passkey/login`);
  await page.locator('.state:not([hidden])').first().waitFor({ state: 'visible', timeout: UI_TIMEOUT });
  const shown = await page.locator('.state:not([hidden])').first();
  if ((await shown.getAttribute('id')) !== 'ready') {
    throw new Error(`not the start screen: ${(await shown.innerText()).replace(/\s+/g, ' ')}`);
  }
}

async function signIn(page) {
  await openLogin(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  return outcome(page);
}

async function counters(cdp, authenticatorId) {
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  return credentials;
}

// The user whose credential the last sign-in used: the one whose sign count went up.
function usedCredential(before, after) {
  const was = new Map(before.map((c) => [c.credentialId, c.signCount]));
  const up = after.filter((c) => c.signCount > (was.get(c.credentialId) ?? -1));
  return up.length === 1 ? up[0] : null;
}

// How many sessions of `user` carry a passkey check (the API, as the admin).
async function checkedSessions(user) {
  const found = await rest('POST', '/v2/sessions/search', { queries: [{ userIdQuery: { id: user.userId } }] });
  return (found.sessions || []).filter((x) => x.factors && x.factors.webAuthN && x.factors.user && x.factors.user.id === user.userId).length;
}

async function main() {
  const browser = await launchChromium();
  context = browser.context;
  closeBrowser = browser.close;

  const org = await rest('POST', '/v2/organizations', { name: `browser-login-${rand()}` });
  const orgId = org.organizationId;

  // ---- 1. Ada enrolls via the link, then signs in username-less ----
  const ada = await newUser(orgId, 'Ada', 'Lovelace');
  const grace = await newUser(orgId, 'Grace', 'Hopper');
  const { page, cdp, authenticatorId } = await openPage();
  const starts = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url() === `${BASE}/ui/passkey/login/start`) starts.push(r.url());
  });
  const credOf = new Map(); // credentialId -> user
  const enrolledAda = await step('enroll: Ada creates a passkey via the emailed link', async () => {
    await enrollVia(page, await linkURL(ada, orgId));
    const creds = await counters(cdp, authenticatorId);
    if (creds.length !== 1 || !creds[0].isResidentCredential) throw new Error(JSON.stringify(creds));
    credOf.set(creds[0].credentialId, ada);
  });
  if (!enrolledAda) return;

  // Autofill: Chromium's virtual authenticator answers a conditional request by itself (as if
  // the person picked the passkey from the suggestions), so the page signs in without a click.
  let before = await counters(cdp, authenticatorId);
  await page.goto(`${BASE}/ui/passkey/login`);
  const field = await page.locator('#username').getAttribute('autocomplete');
  check('autofill: the field asks for passkey autofill', field === 'username webauthn', `autocomplete=${field}`);
  const conditional = await page.evaluate(() =>
    window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable ? PublicKeyCredential.isConditionalMediationAvailable() : false
  );
  if (conditional) {
    await step('autofill: Ada signs in through the autofill request, the screen names her', async () => {
      const text = await outcome(page);
      if (!text.includes(ada.name) || !text.includes(ada.email)) throw new Error(`success text: ${text}`);
      if (starts.length !== 1) throw new Error(`${starts.length} sessions started`);
      const used = usedCredential(before, await counters(cdp, authenticatorId));
      if (!used || credOf.get(used.credentialId) !== ada) throw new Error("not Ada's credential was used");
    });
    await page.screenshot({ path: path.join(ARTIFACTS, 'login-autofill-success.png'), fullPage: true });
  } else {
    console.log('SKIP autofill: this Chromium reports no conditional mediation');
  }

  // From here on the browser offers no autofill (as many do): the button is the way in.
  await page.addInitScript(() => {
    if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
  });
  await openLogin(page);
  check('no autofill: the username field is hidden, the button remains', !(await page.locator('#username').isVisible()), 'the field is shown');
  await page.screenshot({ path: path.join(ARTIFACTS, 'login-ready.png'), fullPage: true });

  before = await counters(cdp, authenticatorId);
  await step('sign-in: Ada signs in username-less with the button; the screen names her', async () => {
    const text = await signIn(page);
    if (!text.includes(ada.name) || !text.includes(ada.email)) throw new Error(`success text: ${text}`);
    const used = usedCredential(before, await counters(cdp, authenticatorId));
    if (!used || credOf.get(used.credentialId) !== ada) throw new Error('not Ada\'s credential was used');
  });
  await page.screenshot({ path: path.join(ARTIFACTS, 'login-success.png'), fullPage: true });

  // ---- 2. Grace enrolls on the same authenticator and signs in as herself ----
  const enrolledGrace = await step('enroll: Grace creates a passkey on the same authenticator', async () => {
    await enrollVia(page, await linkURL(grace, orgId));
    const creds = await counters(cdp, authenticatorId);
    if (creds.length !== 2) throw new Error(`${creds.length} credentials`);
    const fresh = creds.find((c) => !credOf.has(c.credentialId));
    credOf.set(fresh.credentialId, grace);
  });
  if (enrolledGrace) {
    // Both passkeys on the authenticator: Chromium's virtual environment takes the first
    // credential in its own order (no account chooser, and sign counts do not tell which: it
    // counts every credential it collects assertions from). Whichever it used, the screen must
    // name the user the server signed in through that credential.
    await step('sign-in: with both passkeys on the authenticator, the screen names the user the server signed in', async () => {
      const a0 = await checkedSessions(ada);
      const g0 = await checkedSessions(grace);
      const text = await signIn(page);
      const a1 = await checkedSessions(ada);
      const g1 = await checkedSessions(grace);
      const who = a1 === a0 + 1 && g1 === g0 ? ada : g1 === g0 + 1 && a1 === a0 ? grace : null;
      if (!who) throw new Error(`sessions checked: Ada ${a0}->${a1}, Grace ${g0}->${g1}`);
      const other = who === ada ? grace : ada;
      if (!text.includes(who.name) || !text.includes(who.email) || text.includes(other.name)) throw new Error(`success text: ${text}`);
    });
    // Then Grace's passkey deterministically: Ada's credential is taken off the authenticator.
    await step('sign-in: the second user\'s passkey on the same authenticator signs in as that user', async () => {
      const adaCred = [...credOf.entries()].find(([, u]) => u === ada)[0];
      await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: adaCred });
      const g0 = await checkedSessions(grace);
      const text = await signIn(page);
      if (!text.includes(grace.name) || !text.includes(grace.email) || text.includes(ada.name)) throw new Error(`success text: ${text}`);
      const g1 = await checkedSessions(grace);
      if (g1 !== g0 + 1) throw new Error(`Grace's passkey-checked sessions: ${g0} -> ${g1}`);
    });
  }

  // ---- 3. A cancelled prompt, then Try again ----
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
  const cancelled = await step('cancelled: a refused prompt says so, with a Try again button', async () => {
    await signIn(page).then(
      (t) => {
        throw new Error(`signed in: ${t}`);
      },
      (e) => {
        if (!/prompt was closed/.test(e.message)) throw e;
      }
    );
    await page.locator('#retry').waitFor({ state: 'visible', timeout: 1000 });
  });
  await page.screenshot({ path: path.join(ARTIFACTS, 'login-cancelled.png'), fullPage: true });
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });
  if (cancelled) {
    await step('retry: Try again, then the button signs in', async () => {
      await page.locator('#retry').click();
      await page.locator('#ready').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
      await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
      const text = await outcome(page);
      if (!text.includes(grace.name) && !text.includes(ada.name)) throw new Error(`success text: ${text}`);
    });
  }
  await page.close();

  // ---- 4. A passkey the server no longer knows ----
  {
    const carol = await newUser(orgId, 'Carol', 'Shaw');
    const { page: p2 } = await openPage();
    await p2.addInitScript(() => {
      if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
    });
    await enrollVia(p2, await linkURL(carol, orgId));
    const list = await rest('POST', `/v2/users/${carol.userId}/passkeys/_search`, {});
    await rest('DELETE', `/v2/users/${carol.userId}/passkeys/${list.result[0].id}`);
    await step('unknown passkey: a removed passkey is "not recognised", with Try again', async () => {
      await signIn(p2).then(
        (t) => {
          throw new Error(`signed in: ${t}`);
        },
        (e) => {
          if (!/Passkey not recognised/.test(e.message)) throw e;
        }
      );
      await p2.locator('#retry').waitFor({ state: 'visible', timeout: 1000 });
    });
    await p2.screenshot({ path: path.join(ARTIFACTS, 'login-unknown.png'), fullPage: true });
    await p2.close();
  }

  const errors = consoleLines.filter((l) => l.startsWith('pageerror'));
  check('console: no script errors', errors.length === 0, errors.join(' | '));
  check('network: the page loaded nothing from other origins', foreignRequests.length === 0, foreignRequests.join(', '));
}

try {
  await main();
} catch (e) {
  fail('browser login e2e', e && e.stack ? e.stack : String(e));
} finally {
  await closeBrowser();
}
finish('browser login');
