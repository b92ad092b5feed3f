// What the browser suites share: the environment, PASS/FAIL reporting, the admin's REST calls,
// Chromium with a virtual WebAuthn authenticator per page, and the hosted pages' outcome screens.
//
// Environment: PASSLINK_URL (http://localhost:PORT — the WebAuthn relying party id is
// `localhost`), PASSLINK_TOKEN (an IAM_OWNER PAT), ARTIFACTS_DIR (screenshots, default
// tests/browser/artifacts), CHROMIUM (default /usr/bin/chromium), CHROMIUM_SPKI (for a passlink
// serving TLS with a test certificate: base64 SHA-256 of the leaf's public key, which Chromium then
// trusts through --ignore-certificate-errors-spki-list; node's fetch trusts the CA through
// NODE_EXTRA_CA_CERTS).

import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.basename(process.argv[1] || 'browser suite');
export const BASE = (process.env.PASSLINK_URL || '').replace(/\/+$/, '');
export const TOKEN = process.env.PASSLINK_TOKEN || '';
export const ARTIFACTS = path.resolve(process.env.ARTIFACTS_DIR || path.join(here, 'artifacts'));
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_SPKI = process.env.CHROMIUM_SPKI || '';
export const UI_TIMEOUT = 20_000;

if (!BASE || !TOKEN) {
  console.error(`${script}: set PASSLINK_URL (http://localhost:PORT) and PASSLINK_TOKEN`);
  process.exit(2);
}
if (new URL(BASE).hostname !== 'localhost') {
  console.error(`${script}: PASSLINK_URL must use the host "localhost" (WebAuthn relying party id)`);
  process.exit(2);
}
fs.mkdirSync(ARTIFACTS, { recursive: true });

// ---- reporting -------------------------------------------------------------------------------

let failed = 0;
let passed = 0;
export function pass(name) {
  passed++;
  console.log(`PASS ${name}`);
}
export function fail(name, why) {
  failed++;
  console.log(`FAIL ${name}: ${why}`);
}
export function check(name, cond, why) {
  if (cond) pass(name);
  else fail(name, why);
  return cond;
}
export async function step(name, fn) {
  try {
    await fn();
    pass(name);
    return true;
  } catch (e) {
    fail(name, e && e.message ? e.message.split('\n')[0] : String(e));
    return false;
  }
}
/// Print the summary line and exit (1 if any check failed).
export function finish(label) {
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// ---- REST as the admin -----------------------------------------------------------------------

export async function rest(method, p, body, { auth = true } = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (auth) headers.authorization = `Bearer ${TOKEN}`;
  const res = await fetch(`${BASE}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p} -> ${res.status} ${text.slice(0, 300)}`);
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return { raw: text };
  }
}

export const rand = () => crypto.randomBytes(4).toString('hex');

/// A human user with a verified email in `orgId`.
export async function newUser(orgId, givenName = 'Ada', familyName = 'Lovelace', profile = {}) {
  const email = `${givenName.toLowerCase()}-${rand()}@example.com`;
  const user = await rest('POST', '/v2/users/human', {
    organization: { orgId },
    profile: { givenName, familyName, ...profile },
    email: { email, isVerified: true },
  });
  if (!user.userId) throw new Error(`no userId in ${JSON.stringify(user)}`);
  return { userId: user.userId, email, name: `${givenName} ${familyName}` };
}

// ---- Chromium --------------------------------------------------------------------------------

/// What every page logged, and every request that left passlink's origin (checked at the end).
export const consoleLines = [];
export const foreignRequests = [];

/// Headless Debian Chromium on a fresh profile; `close()` also removes the profile.
export async function launchChromium() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'passlink-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(CHROMIUM_SPKI ? [`--ignore-certificate-errors-spki-list=${CHROMIUM_SPKI}`] : []),
    ],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/// A page with its own virtual authenticator (CTAP2, internal, resident keys, user verification
/// that succeeds, presence simulated).
export async function openPage(context, { width = 1024, height = 768 } = {}) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  page.on('console', (m) => consoleLines.push(m.text()));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(`${BASE}/`) && !u.startsWith('data:')) foreignRequests.push(u);
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { page, cdp, authenticatorId };
}

/// Wait for the hosted page's success or error screen; returns the success text, throws with the
/// error screen's text.
export async function outcome(page) {
  await page.locator('#success:not([hidden]), #error:not([hidden])').first().waitFor({ state: 'visible', timeout: UI_TIMEOUT });
  if (await page.locator('#error').isVisible()) {
    throw new Error(`error screen: ${(await page.locator('#error').innerText()).replace(/\s+/g, ' ')}`);
  }
  return (await page.locator('#success').innerText()).replace(/\s+/g, ' ');
}
