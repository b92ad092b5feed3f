// The hosted registration page over passlink's native TLS: passlink serves HTTPS with a test
// CA's certificate (--tls-cert-file); Chromium trusts the leaf's key (CHROMIUM_SPKI, see
// harness.mjs) and node's fetch the CA (NODE_EXTRA_CA_CERTS). The page on https://localhost:PORT
// sends HSTS, is a secure context, and a passkey is created through it; the API lists it.
//
//   PASSLINK_URL=https://localhost:PORT PASSLINK_TOKEN=<IAM_OWNER PAT> CHROMIUM_SPKI=<b64> \
//   NODE_EXTRA_CA_CERTS=ca.pem node tests/browser/tls.mjs

import path from 'node:path';

import {
  ARTIFACTS, BASE, UI_TIMEOUT, check, fail, finish, launchChromium, newUser, openPage, outcome, rand, rest, step,
} from './harness.mjs';

async function main() {
  if (new URL(BASE).protocol !== 'https:') throw new Error(`PASSLINK_URL must be https: ${BASE}`);
  const browser = await launchChromium();
  try {
    const org = await rest('POST', '/v2/organizations', { name: `browser-tls-${rand()}` });
    const ada = await newUser(org.organizationId);
    const r = await rest('POST', `/v2/users/${ada.userId}/passkeys/registration_link`, { returnCode: {} });
    const q = new URLSearchParams({ userID: ada.userId, orgID: org.organizationId, codeID: r.code.id, code: r.code.code });
    const { page, cdp, authenticatorId } = await openPage(browser.context);
    const response = await page.goto(`${BASE}/ui/passkey/register?${q}`);
    check('TLS: the page loads over HTTPS with the test certificate', response && response.ok(), `status ${response && response.status()}`);
    const hsts = await response.headerValue('strict-transport-security');
    check('TLS: the hosted page sends HSTS', hsts === 'max-age=31536000', `strict-transport-security: ${hsts}`);
    const secure = await page.evaluate(() => window.isSecureContext && location.protocol === 'https:');
    check('TLS: the page is a secure context on https', secure, 'not a secure https context');
    await page.locator('#ready').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
    await page.getByRole('button', { name: 'Create passkey' }).click();
    const ok = await step('TLS: clicking "Create passkey" ends on the success screen', async () => {
      await outcome(page);
    });
    await page.screenshot({ path: path.join(ARTIFACTS, ok ? 'tls-success.png' : 'tls-failure.png'), fullPage: true });
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check('TLS: the authenticator holds a credential for localhost', credentials.length === 1 && credentials[0].rpId === 'localhost',
      JSON.stringify(credentials.map((c) => c.rpId)));
    const list = (await rest('POST', `/v2/users/${ada.userId}/passkeys/_search`, {})).result || [];
    check('TLS: ListPasskeys shows the passkey READY', list.length === 1 && list[0].state === 'AUTH_FACTOR_STATE_READY', JSON.stringify(list));
  } catch (e) {
    fail('browser over TLS', e && e.message ? e.message.split('\n')[0] : String(e));
  } finally {
    await browser.close();
  }
  finish('browser over TLS');
}

main();
