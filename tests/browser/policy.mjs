// The authenticator policy on the hosted registration page: passlink runs with a policy that
// denies Chromium's virtual authenticator (AAGUID 01020304-0506-0708-0102-030405060708). A person
// opens a registration link and clicks "Create passkey": the browser creates the credential, the
// server refuses it (PASSKEY-Pol01), the page says the authenticator is not allowed and offers
// to try again; no passkey is stored and the code is still usable.
//
//   PASSLINK_URL=http://localhost:PORT PASSLINK_TOKEN=<IAM_OWNER PAT> node tests/browser/policy.mjs
//   (passlink started with --authenticator-policy denying that AAGUID)

import path from 'node:path';

import {
  ARTIFACTS, BASE, UI_TIMEOUT, check, fail, finish, launchChromium, newUser, openPage, rand, rest, step,
} from './harness.mjs';

async function main() {
  const browser = await launchChromium();
  try {
    const org = await rest('POST', '/v2/organizations', { name: `browser-policy-${rand()}` });
    const ada = await newUser(org.organizationId);
    const r = await rest('POST', `/v2/users/${ada.userId}/passkeys/registration_link`, { returnCode: {} });
    const q = new URLSearchParams({ userID: ada.userId, orgID: org.organizationId, codeID: r.code.id, code: r.code.code });
    const { page, cdp, authenticatorId } = await openPage(browser.context);
    await page.goto(`${BASE}/ui/passkey/register?${q}`);
    await page.locator('#ready').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
    await page.getByRole('button', { name: 'Create passkey' }).click();
    await step('policy: the page says the authenticator is not allowed, with a retry', async () => {
      await page.locator('#error').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
      const text = (await page.locator('#error').innerText()).replace(/\s+/g, ' ');
      if (!text.includes('This authenticator is not allowed') || !text.includes('another passkey provider')) {
        throw new Error(`error text: ${text}`);
      }
      if (!(await page.locator('#retry').isVisible())) throw new Error('no retry button');
    });
    await page.screenshot({ path: path.join(ARTIFACTS, 'policy-denied.png'), fullPage: true });
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check('policy: the browser did create a credential', credentials.length === 1, `${credentials.length} credentials`);
    const list = (await rest('POST', `/v2/users/${ada.userId}/passkeys/_search`, {})).result || [];
    check('policy: no passkey is stored', list.length === 0, JSON.stringify(list));
    await step('policy: the code is still usable (RegisterPasskey with it, no token)', async () => {
      const again = await rest('POST', `/v2/users/${ada.userId}/passkeys`, { code: { id: r.code.id, code: r.code.code } }, { auth: false });
      if (!again.passkeyId) throw new Error(`no passkeyId in ${JSON.stringify(again).slice(0, 200)}`);
    });
  } catch (e) {
    fail('browser policy', e && e.message ? e.message.split('\n')[0] : String(e));
  } finally {
    await browser.close();
  }
  finish('browser policy');
}

main();
