// Browser end to end: a person opens passlink's default registration link in Debian's Chromium
// (headless, driven over the DevTools protocol with a virtual WebAuthn authenticator), creates a
// passkey by clicking the page, and the passkey is then listed by the API.
//
//   PASSLINK_URL=http://localhost:PORT PASSLINK_TOKEN=<IAM_OWNER PAT> node tests/browser/enroll.mjs
//
// PASSLINK_URL must use the host `localhost` (the WebAuthn relying party id of a server started
// with --external-url http://localhost:PORT); the environment, reporting, REST and Chromium
// helpers are in harness.mjs (shared with login.mjs). Prints one PASS/FAIL line per check and
// exits 1 if any failed.

import path from 'node:path';

import {
  ARTIFACTS, BASE, UI_TIMEOUT, check, consoleLines, fail, finish, foreignRequests, launchChromium, newUser,
  openPage as openPageIn, outcome, rand, rest, step,
} from './harness.mjs';

// ---- REST ----------------------------------------------------------------------------------

async function newLink(userId) {
  const r = await rest('POST', `/v2/users/${userId}/passkeys/registration_link`, { returnCode: {} });
  if (!r.code || !r.code.id || !r.code.code) throw new Error(`no code in ${JSON.stringify(r)}`);
  return r.code;
}

function linkURL({ userId, orgId, codeId, code }) {
  const q = new URLSearchParams({ userID: userId, orgID: orgId, codeID: codeId, code });
  return `${BASE}/ui/passkey/register?${q}`;
}

async function listPasskeys(userId) {
  const r = await rest('POST', `/v2/users/${userId}/passkeys/_search`, {});
  return r.result || [];
}

// ---- Browser -------------------------------------------------------------------------------

let context;
let closeBrowser = async () => {};
const secrets = []; // codes that must never reach the console

const openPage = (size) => openPageIn(context, size);

async function visible(page, selector, timeout = UI_TIMEOUT) {
  await page.locator(selector).waitFor({ state: 'visible', timeout });
}

// Waits for the success or the error screen; throws with the page's message if the error came.
const waitForOutcome = outcome;

async function focusedHeadingIn(page, sectionId) {
  return page.evaluate((id) => {
    const a = document.activeElement;
    return !!a && a.tagName === 'H1' && !!a.closest(`#${id}`);
  }, sectionId);
}

async function main() {
  const browser = await launchChromium();
  context = browser.context;
  closeBrowser = browser.close;

  const org = await rest('POST', '/v2/organizations', { name: `browser-e2e-${rand()}` });
  const orgId = org.organizationId;
  if (!orgId) throw new Error(`no organizationId in ${JSON.stringify(org)}`);

  // ---- 1. enrollment through the default link ----
  const ada = await newUser(orgId);
  const code = await newLink(ada.userId);
  secrets.push(code.code);
  const link = linkURL({ userId: ada.userId, orgId, codeId: code.id, code: code.code });
  const chosenName = `E2E passkey ${rand()}`;
  {
    const { page, cdp, authenticatorId } = await openPage({ width: 360, height: 740 });
    await page.goto(link);
    const ready = await step('ready: the page shows who is enrolling', async () => {
      await visible(page, '#ready');
      const text = (await page.locator('#ready').innerText()).replace(/\s+/g, ' ');
      if (!text.includes('Ada Lovelace') || !text.includes(ada.email)) throw new Error(`ready text: ${text}`);
    });
    if (ready) {
      check('ready: focus is on the heading', await focusedHeadingIn(page, 'ready'), 'focus not on #ready h1');
      const def = await page.locator('#passkey-name').inputValue();
      check('ready: a default passkey name is prefilled', /^Passkey on \S/.test(def), `got ${JSON.stringify(def)}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check('ready: no horizontal scrolling at 360px', overflow <= 0, `overflows by ${overflow}px`);
      await page.screenshot({ path: path.join(ARTIFACTS, 'ready-360.png'), fullPage: true });
      await step('ready: "another device" shows the link as a QR code', async () => {
        await page.locator('#other-device summary').click();
        await page.locator('#qr').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
        await page.waitForFunction(() => document.getElementById('qr').complete, null, { timeout: UI_TIMEOUT });
        const w = await page.evaluate(() => document.getElementById('qr').naturalWidth);
        if (!(w >= 200)) throw new Error(`QR image not rendered (naturalWidth ${w})`);
        const src = await page.evaluate(() => document.getElementById('qr').src);
        if (!src.startsWith(`${BASE}/ui/passkey/register/qr.svg?`)) throw new Error(`QR src ${src}`);
        await page.screenshot({ path: path.join(ARTIFACTS, 'qr-360.png'), fullPage: true });
        await page.locator('#other-device summary').click();
      });
      await page.setViewportSize({ width: 1024, height: 768 });

      await page.locator('#passkey-name').fill(chosenName);
      await page.getByRole('button', { name: 'Create passkey' }).click();
      const ok = await step('success: clicking "Create passkey" ends on the success screen', async () => {
        await waitForOutcome(page);
        const heading = await page.locator('#success h1').innerText();
        if (!/passkey is ready/i.test(heading)) throw new Error(`success heading: ${heading}`);
      });
      await page.screenshot({ path: path.join(ARTIFACTS, ok ? 'enrollment-success.png' : 'enrollment-failure.png'), fullPage: true });
      if (ok) {
        check('success: focus is on the success heading', await focusedHeadingIn(page, 'success'), 'focus not on #success h1');
        const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
        check(
          'authenticator: holds one resident credential',
          credentials.length === 1 && credentials[0].isResidentCredential === true && credentials[0].rpId === 'localhost',
          JSON.stringify(credentials.map((c) => ({ rk: c.isResidentCredential, rpId: c.rpId })))
        );
        const list = await listPasskeys(ada.userId);
        check(
          'API: ListPasskeys shows the passkey READY with the chosen name',
          list.length === 1 && list[0].state === 'AUTH_FACTOR_STATE_READY' && list[0].name === chosenName,
          JSON.stringify(list)
        );

        // A second link for the same user, on the same authenticator: the server excludes the
        // existing credential, so the browser refuses and the page says so (with a retry).
        const again = await newLink(ada.userId);
        secrets.push(again.code);
        await page.goto(linkURL({ userId: ada.userId, orgId, codeId: again.id, code: again.code }));
        await visible(page, '#ready');
        await page.getByRole('button', { name: 'Create passkey' }).click();
        await step('excluded credential: the page says this device already has a passkey', async () => {
          await visible(page, '#error');
          const text = await page.locator('#error').innerText();
          if (!text.includes('already has a passkey')) throw new Error(`error text: ${text}`);
          const { credentials: after } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
          if (after.length !== 1) throw new Error(`authenticator holds ${after.length} credentials`);
          const still = await listPasskeys(ada.userId);
          if (still.length !== 1) throw new Error(`ListPasskeys: ${JSON.stringify(still)}`);
        });
      }
    }
    await page.close();
  }

  // ---- 2. the same link again: the code is used ----
  {
    const { page } = await openPage();
    await page.goto(link);
    await step('used code: the page says the link is no longer valid, without retry', async () => {
      await visible(page, '#error');
      const text = await page.locator('#error').innerText();
      if (!text.includes('no longer valid')) throw new Error(`error text: ${text}`);
      if (await page.locator('#retry').isVisible()) throw new Error('a retry button is shown');
      if (!(await focusedHeadingIn(page, 'error'))) throw new Error('focus not on #error h1');
    });
    await page.screenshot({ path: path.join(ARTIFACTS, 'expired-code.png'), fullPage: true });
    await page.close();
  }

  // ---- 3. a wrong code ----
  {
    const bob = await newUser(orgId);
    const real = await newLink(bob.userId);
    secrets.push(real.code);
    const { page } = await openPage();
    await page.goto(linkURL({ userId: bob.userId, orgId, codeId: real.id, code: `${real.code}x` }));
    await step('wrong code: the error screen is shown', async () => {
      await visible(page, '#error');
      const text = await page.locator('#error').innerText();
      if (!text.includes('no longer valid')) throw new Error(`error text: ${text}`);
    });
    await page.close();
  }

  // ---- 4. a link missing its code ----
  {
    const { page } = await openPage();
    await page.goto(`${BASE}/ui/passkey/register?userID=${ada.userId}&orgID=${orgId}`);
    await step('incomplete link: the invalid-link error is shown', async () => {
      await visible(page, '#error');
      const text = await page.locator('#error').innerText();
      if (!text.includes('no longer valid')) throw new Error(`error text: ${text}`);
    });
    await page.close();
  }

  // ---- 5. a failed browser prompt, then Retry with the same code ----
  {
    const carol = await newUser(orgId);
    const c = await newLink(carol.userId);
    secrets.push(c.code);
    const { page, cdp, authenticatorId } = await openPage();
    await page.goto(linkURL({ userId: carol.userId, orgId, codeId: c.id, code: c.code }));
    await visible(page, '#ready');
    // The authenticator refuses user verification: the browser rejects with NotAllowedError.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    await page.getByRole('button', { name: 'Create passkey' }).click();
    const cancelled = await step('failed prompt: "try again" message with a Retry button', async () => {
      await visible(page, '#error');
      const text = await page.locator('#error').innerText();
      if (!text.includes('prompt was closed')) throw new Error(`error text: ${text}`);
      await visible(page, '#retry', 1000);
    });
    await page.screenshot({ path: path.join(ARTIFACTS, 'prompt-closed.png'), fullPage: true });
    if (cancelled) {
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });
      // Keyboard only: Tab to the Retry button from the focused heading and press Enter.
      await page.keyboard.press('Tab');
      const onRetry = await page.evaluate(() => document.activeElement && document.activeElement.id === 'retry');
      check('failed prompt: Retry is the next keyboard stop', onRetry, 'Tab did not reach #retry');
      if (onRetry) await page.keyboard.press('Enter');
      else await page.locator('#retry').click();
      await step('retry: the same code still enrolls after a failed prompt', async () => {
        await waitForOutcome(page);
        const list = await listPasskeys(carol.userId);
        if (list.length !== 1 || list[0].state !== 'AUTH_FACTOR_STATE_READY') throw new Error(JSON.stringify(list));
      });
    }
    await page.close();
  }

  // ---- 6. the prefilled name gives way to the authenticator's provider ----
  // The suite's server names authenticators from tests/browser/aaguid.json, which knows the fixed
  // AAGUID of Chromium's virtual authenticator (01020304-0506-0708-0102-030405060708).
  {
    const dora = await newUser(orgId, 'Dora', 'Default');
    const d = await newLink(dora.userId);
    secrets.push(d.code);
    const { page } = await openPage();
    await page.goto(linkURL({ userId: dora.userId, orgId, codeId: d.id, code: d.code }));
    await visible(page, '#ready');
    await page.getByRole('button', { name: 'Create passkey' }).click();
    await step('default name: the passkey is named after its authenticator (AAGUID list)', async () => {
      await waitForOutcome(page);
      const ours = await rest('GET', `/passlink/v1/users/${dora.userId}/passkeys`);
      const p = (ours.result || [])[0] || {};
      const want = 'Chromium virtual authenticator';
      const got = { aaguid: p.aaguid, providerName: p.providerName, name: p.name };
      if (got.aaguid !== '01020304-0506-0708-0102-030405060708' || got.providerName !== want || got.name !== want) {
        throw new Error(JSON.stringify(got));
      }
      const shown = await page.locator('#success-name').innerText();
      if (!shown.includes(want)) throw new Error(`success screen names ${shown}`);
    });
    await page.close();
  }

  // ---- 7. a browser without WebAuthn ----
  {
    const { page } = await openPage();
    await page.addInitScript(() => {
      delete window.PublicKeyCredential;
    });
    await page.goto(link);
    await step('no WebAuthn: the page says this browser cannot create passkeys', async () => {
      await visible(page, '#error');
      const text = await page.locator('#error').innerText();
      if (!text.includes('This browser cannot create passkeys')) throw new Error(`error text: ${text}`);
    });
    await page.close();
  }

  // ---- 8. a German user in an English browser: the page switches to German ----
  // The browser asks for English (Accept-Language); the user's preferredLanguage wins once the
  // link is checked.
  {
    const greta = await newUser(orgId, 'Greta', 'Deutsch', { preferredLanguage: 'de' });
    const g = await newLink(greta.userId);
    secrets.push(g.code);
    const { page } = await openPage();
    await page.goto(linkURL({ userId: greta.userId, orgId, codeId: g.id, code: g.code }));
    const ready = await step('German: a user with preferredLanguage de gets the page in German', async () => {
      await visible(page, '#ready');
      const lang = await page.evaluate(() => document.documentElement.lang);
      if (lang !== 'de') throw new Error(`<html lang="${lang}">`);
      const text = (await page.locator('#ready').innerText()).replace(/\s+/g, ' ');
      if (!text.includes('Erstellen Sie einen Passkey für Greta Deutsch') || !text.includes('Name des Passkeys')) {
        throw new Error(`ready text: ${text}`);
      }
      const def = await page.locator('#passkey-name').inputValue();
      if (!/^Passkey auf \S/.test(def)) throw new Error(`default name ${JSON.stringify(def)}`);
    });
    if (ready) {
      await page.getByRole('button', { name: 'Passkey erstellen' }).click();
      await step('German: the success screen is German', async () => {
        const text = await waitForOutcome(page);
        const heading = await page.locator('#success h1').innerText();
        if (heading !== 'Ihr Passkey ist bereit') throw new Error(`success heading: ${heading}`);
        if (!text.includes('Sie können sich jetzt mit dem Passkey \u201e')) throw new Error(`success text: ${text}`);
        const title = await page.title();
        if (title !== 'Ihr Passkey ist bereit · Passkey') throw new Error(`title: ${title}`);
      });
      await page.screenshot({ path: path.join(ARTIFACTS, 'enrollment-success-de.png'), fullPage: true });
    }
    await page.close();
  }

  const leaked = consoleLines.filter((l) => secrets.some((s) => l.includes(s)));
  check('console: no registration code was logged', leaked.length === 0, `${leaked.length} console lines contain a code`);
  check('network: the page loaded nothing from other origins', foreignRequests.length === 0, foreignRequests.join(', '));
}

try {
  await main();
} catch (e) {
  fail('browser e2e', e && e.stack ? e.stack : String(e));
} finally {
  await closeBrowser();
}
console.log(`screenshots in ${ARTIFACTS}`);
finish('browser');
