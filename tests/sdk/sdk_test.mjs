// ZITADEL's official npm SDK (@zitadel/client, pinned in package.json / package-lock.json),
// unchanged, against a running passlink in the three auth modes.
//
// @zitadel/client 1.3.1 is a transport helper: it sends a bearer token it is given
// (`createServerTransport(token, {baseUrl})` from "@zitadel/client/node" → gRPC over h2c,
// `createClientTransport(token, {baseUrl})` from "@zitadel/client/web" → gRPC-web) and builds the
// service clients (`createUserServiceClient` from "@zitadel/client/v2"). It has no OAuth code of
// its own, so for the client-credentials and private-key-JWT modes this test gets the access token
// the way ZITADEL documents it for Node (discovery → token_endpoint; client_secret_post and
// client_secret_basic; a jwt-bearer assertion signed with `jose`, the SDK's own dependency, from
// AddKey's key file) and hands it to the SDK. See FINDINGS.md.
//
// Run (see scripts/test):
//   npm ci
//   PASSLINK_URL=http://localhost:8080 PASSLINK_TOKEN="$(cat ../../passlink-data/admin.pat)" node sdk_test.mjs
//
// PASSLINK_URL must equal passlink's --external-url. PASSLINK_TOKEN is a personal access token of an
// IAM_OWNER, used for the setup only. Output: "PASS <check>" / "FAIL <check>: <reason>" lines and
// "N passed, M failed"; exit 1 on failure. A failed token request is printed with the request sent
// and the server's status and body.

import { createPrivateKey, randomBytes } from "node:crypto";
import { createServerTransport } from "@zitadel/client/node";
import { createClientTransport } from "@zitadel/client/web";
import { createUserServiceClient } from "@zitadel/client/v2";
import { SignJWT, generateKeyPair } from "jose";

const BASE = (process.env.PASSLINK_URL ?? "").replace(/\/+$/, "");
const ADMIN = process.env.PASSLINK_TOKEN ?? "";
if (!BASE || !ADMIN) {
  console.error("PASSLINK_URL and PASSLINK_TOKEN must be set");
  process.exit(2);
}
const SCOPE = "openid urn:zitadel:iam:org:project:id:zitadel:aud";

let passed = 0;
let failed = 0;
const ok = (name) => {
  passed++;
  console.log(`PASS node ${name}`);
};
const fail = (name, reason) => {
  failed++;
  console.log(`FAIL node ${name}: ${reason}`);
};
// @zitadel/client's typings re-export ConnectError and Code, its JavaScript does not (1.3.1), and it
// carries its own copy of @connectrpc/connect: errors are recognised by shape, codes by number.
const UNAUTHENTICATED = 16;
const CODE_NAMES = ["ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
  "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented",
  "internal", "unavailable", "data_loss", "unauthenticated"];
const isConnectError = (e) => e?.name === "ConnectError" && typeof e.code === "number";
const describe = (e) =>
  isConnectError(e) ? `ConnectError ${CODE_NAMES[e.code] ?? e.code}: ${e.rawMessage}` : `${e?.name ?? "Error"}: ${e?.message ?? e}`;

// ---------------------------------------------------------------------------------------------
// plain HTTP for the setup (admin token), discovery and the token endpoint

async function connect(method, body) {
  const res = await fetch(`${BASE}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`setup ${method} -> ${res.status} ${text}`);
  return JSON.parse(text);
}

function decodeJwt(token) {
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  try {
    return {
      header: JSON.parse(Buffer.from(parts[0], "base64url").toString()),
      claims: JSON.parse(Buffer.from(parts[1], "base64url").toString()),
    };
  } catch {
    return null;
  }
}

// One token request; returns {status, body, json, sent} so a failure can show both sides.
async function tokenRequest(tokenEndpoint, form, basic) {
  const headers = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString("base64")}`;
  const body = new URLSearchParams(form).toString();
  const res = await fetch(tokenEndpoint, { method: "POST", headers, body });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  const shown = { ...form };
  if (shown.client_secret) shown.client_secret = "…";
  if (shown.assertion) shown.assertion = decodeJwt(shown.assertion) ?? shown.assertion;
  return {
    status: res.status,
    body: text.slice(0, 600),
    json,
    sent: `POST ${tokenEndpoint} ${basic ? "(Basic auth) " : ""}${JSON.stringify(shown)}`,
  };
}
const showToken = (r) => `${r.status} ${r.body}\n    request: ${r.sent}`;

// ---------------------------------------------------------------------------------------------
// setup

const rand = randomBytes(4).toString("hex");
let org, human, machine, username, pat;
try {
  org = (await connect("zitadel.org.v2.OrganizationService/AddOrganization", { name: `sdk-node-${rand}` })).organizationId;
  const res = await fetch(`${BASE}/v2/users/human`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({
      organization: { orgId: org },
      profile: { givenName: "Ada", familyName: "Lovelace" },
      email: { email: `ada-${rand}@example.com`, isVerified: true },
    }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`setup POST /v2/users/human -> ${res.status} ${text}`);
  human = JSON.parse(text).userId;
  username = `sdk-node-${rand}`;
  machine = (
    await connect("zitadel.user.v2.UserService/CreateUser", {
      organizationId: org,
      username,
      machine: { name: "sdk" },
    })
  ).id;
  await connect("zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator", {
    userId: machine,
    resource: { organizationId: org },
    roles: ["ORG_OWNER"],
  });
  pat = (
    await connect("zitadel.user.v2.UserService/AddPersonalAccessToken", {
      userId: machine,
      expirationDate: "2099-01-01T00:00:00Z",
    })
  ).token;
  ok("setup: org, human user, machine user with ORG_OWNER, personal access token");
} catch (e) {
  fail("setup (org, human user, machine user ORG_OWNER, PAT)", describe(e));
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(1);
}

let clientSecret = null;
try {
  clientSecret = (await connect("zitadel.user.v2.UserService/AddSecret", { userId: machine })).clientSecret;
  if (!clientSecret) throw new Error("AddSecret returned no clientSecret");
  ok("setup: AddSecret returns a clientSecret");
} catch (e) {
  fail("setup: AddSecret", describe(e));
}

let keyFile = null;
try {
  const added = await connect("zitadel.user.v2.UserService/AddKey", {
    userId: machine,
    expirationDate: "2099-01-01T00:00:00Z",
  });
  keyFile = JSON.parse(Buffer.from(added.keyContent, "base64").toString());
  const problems = [];
  if (keyFile.type !== "serviceaccount") problems.push(`type=${keyFile.type}`);
  if (keyFile.userId !== machine) problems.push(`userId=${keyFile.userId} (machine user is ${machine})`);
  if (!keyFile.keyId || keyFile.keyId !== added.keyId) problems.push(`keyId=${keyFile.keyId} vs response keyId=${added.keyId}`);
  if (!/PRIVATE KEY-----/.test(keyFile.key ?? "")) problems.push("key is not a PEM private key");
  if (problems.length) fail("setup: AddKey key file in ZITADEL's format", problems.join(", "));
  else ok("setup: AddKey returns a ZITADEL key file (type, keyId, key PEM, userId)");
} catch (e) {
  fail("setup: AddKey", describe(e));
  keyFile = null;
}

let disco = null;
try {
  const res = await fetch(`${BASE}/.well-known/openid-configuration`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${res.status} ${text.slice(0, 400)}`);
  disco = JSON.parse(text);
  if (!disco.token_endpoint) throw new Error(`no token_endpoint in ${text.slice(0, 400)}`);
  ok(`discovery: issuer ${disco.issuer}, token_endpoint ${disco.token_endpoint}`);
} catch (e) {
  fail("discovery GET /.well-known/openid-configuration", describe(e));
  disco = null;
}

// ---------------------------------------------------------------------------------------------
// the SDK calls

const transports = {
  grpc: (token) => createServerTransport(token, { baseUrl: BASE }),
  "grpc-web": (token) => createClientTransport(token, { baseUrl: BASE }),
};

async function createLink(client) {
  return client.createPasskeyRegistrationLink({ userId: human, medium: { case: "returnCode", value: {} } });
}

function checkLink(name, resp) {
  const problems = [];
  if (!resp.code?.id) problems.push("no code.id");
  if (typeof resp.code?.code !== "string" || resp.code.code.length !== 12)
    problems.push(`code.code ${JSON.stringify(resp.code?.code)} is not 12 characters`);
  if (resp.details?.resourceOwner !== org) problems.push(`details.resourceOwner ${resp.details?.resourceOwner} != ${org}`);
  if (problems.length) {
    fail(name, problems.join("; "));
    return false;
  }
  ok(name);
  return true;
}

// Runs CreatePasskeyRegistrationLink twice (the second reuses the token) on both SDK transports.
async function runMode(mode, token) {
  for (const [tname, make] of Object.entries(transports)) {
    const client = createUserServiceClient(make(token));
    for (const attempt of ["", " (second call, same token)"]) {
      const name = `${mode} ${tname}: CreatePasskeyRegistrationLink (returnCode)${attempt} → code.id, 12-char code, resourceOwner`;
      try {
        checkLink(name, await createLink(client));
      } catch (e) {
        fail(name, describe(e));
        break;
      }
    }
  }
}

// 1. personal access token
await runMode("pat", pat);

// 2. client credentials (client id = the machine user's username)
if (clientSecret && disco) {
  const form = { grant_type: "client_credentials", scope: SCOPE };
  const post = await tokenRequest(disco.token_endpoint, { ...form, client_id: username, client_secret: clientSecret });
  if (post.status === 200 && post.json?.access_token) {
    ok("client_credentials (client_secret_post): token endpoint → 200 access_token");
    const jwt = decodeJwt(post.json.access_token);
    if (jwt?.header?.kid && jwt.header.alg === "RS256") ok(`client_credentials: access token is an RS256 JWT with kid ${jwt.header.kid}`);
    else fail("client_credentials: access token is a JWT with kid", `header ${JSON.stringify(jwt?.header ?? null)}`);
    if (post.json.token_type?.toLowerCase() === "bearer" && Number(post.json.expires_in) > 0)
      ok(`client_credentials: token_type Bearer, expires_in ${post.json.expires_in}`);
    else fail("client_credentials: token_type Bearer and expires_in", post.body);
    await runMode("client_credentials", post.json.access_token);
  } else {
    fail("client_credentials (client_secret_post): token endpoint → 200 access_token", showToken(post));
  }

  const basic = await tokenRequest(disco.token_endpoint, form, [username, clientSecret]);
  if (basic.status === 200 && basic.json?.access_token) {
    ok("client_credentials (client_secret_basic): token endpoint → 200 access_token");
    const client = createUserServiceClient(transports.grpc(basic.json.access_token));
    try {
      checkLink("client_credentials (basic) grpc: CreatePasskeyRegistrationLink", await createLink(client));
    } catch (e) {
      fail("client_credentials (basic) grpc: CreatePasskeyRegistrationLink", describe(e));
    }
  } else {
    fail("client_credentials (client_secret_basic): token endpoint → 200 access_token", showToken(basic));
  }

  const wrong = await tokenRequest(disco.token_endpoint, form, [username, `${clientSecret}x`]);
  if (wrong.status === 401 && wrong.json?.error === "invalid_client") ok("client_credentials: wrong secret → 401 invalid_client");
  else fail("client_credentials: wrong secret → 401 invalid_client", showToken(wrong));
} else {
  fail("client_credentials: not run", clientSecret ? "no discovery document" : "no client secret (AddSecret failed)");
}

// a token that is not one: the SDK call must fail with Unauthenticated on both transports
for (const [tname, make] of Object.entries(transports)) {
  const name = `invalid bearer token ${tname}: SDK call fails with Unauthenticated`;
  try {
    await createLink(createUserServiceClient(make(`not-a-token-${rand}`)));
    fail(name, "the call succeeded");
  } catch (e) {
    if (isConnectError(e) && e.code === UNAUTHENTICATED) ok(name);
    else fail(name, describe(e));
  }
}

// 3. private-key JWT (AddKey's key file; ZITADEL issues PKCS#1 PEM, so the key goes through node:crypto)
async function assertion(key, kid, aud) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid })
    .setIssuer(keyFile.userId)
    .setSubject(keyFile.userId)
    .setAudience(aud)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(key);
}

if (keyFile && disco) {
  const aud = disco.issuer ?? BASE;
  let key = null;
  try {
    key = createPrivateKey(keyFile.key);
    ok(`jwt_profile: key file PEM parses (${keyFile.key.split("\n")[0]})`);
  } catch (e) {
    fail("jwt_profile: key file PEM parses", describe(e));
  }
  if (key) {
    const grant = { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", scope: SCOPE };
    const r = await tokenRequest(disco.token_endpoint, { ...grant, assertion: await assertion(key, keyFile.keyId, aud) });
    if (r.status === 200 && r.json?.access_token) {
      ok("jwt_profile: token endpoint → 200 access_token");
      await runMode("jwt_profile", r.json.access_token);
    } else {
      fail("jwt_profile: token endpoint → 200 access_token", showToken(r));
    }

    // a foreign key under the real keyId and user → invalid_grant (RFC 7523: 400 invalid_grant)
    const { privateKey: foreign } = await generateKeyPair("RS256");
    const bad = await tokenRequest(disco.token_endpoint, { ...grant, assertion: await assertion(foreign, keyFile.keyId, aud) });
    if (bad.status === 400 && bad.json?.error === "invalid_grant") ok("jwt_profile: assertion signed with a foreign key → 400 invalid_grant");
    else fail("jwt_profile: assertion signed with a foreign key → 400 invalid_grant", showToken(bad));
  }
} else {
  fail("jwt_profile: not run", keyFile ? "no discovery document" : "no key file (AddKey failed)");
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
