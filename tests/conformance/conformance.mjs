// passlink wire-conformance test: drives a running passlink with ZITADEL's PUBLISHED client
// descriptors (@zitadel/proto), so any field-number / field-name / oneof / type mismatch between
// passlink's own .proto files and ZITADEL's contract shows up as a failure here.
//
// How to run
//   cd tests/conformance
//   npm ci                                   # exact versions from package-lock.json (node >= 20)
//   PASSLINK_URL=http://127.0.0.1:8080 \
//   PASSLINK_TOKEN="$(cat ../../passlink-data/admin.pat)" \
//   node conformance.mjs
//
// Environment
//   PASSLINK_URL         base URL of passlink (plaintext; h2c is used for gRPC). Required.
//   PASSLINK_TOKEN       personal access token of an IAM_OWNER (sent as `authorization: Bearer …`). Required.
//   PASSLINK_TRANSPORTS  optional comma-separated subset of: grpc, grpc-web, connect-json, connect-proto
//   PASSLINK_TIMEOUT_MS  optional per-call timeout (default 15000)
//   PASSLINK_RP_ID       optional WebAuthn relying party id passlink serves (default localhost)
//   PASSLINK_ORIGIN      optional WebAuthn origin, passlink's --external-url
//                        (default http://<PASSLINK_RP_ID>:<port of PASSLINK_URL>)
//
// What it does
//   The same async scenario (`scenario()` below) runs once per transport:
//     grpc           createGrpcTransport({baseUrl})                                   (HTTP/2 cleartext)
//     grpc-web       createGrpcWebTransport({baseUrl, httpVersion: "1.1"})
//     connect-json   createConnectTransport({baseUrl, httpVersion: "1.1", useBinaryFormat: false})
//                    (JSON. connect-node defaults to binary, hence the explicit false. Unknown JSON
//                    fields in responses are an ERROR here, so a misnamed field is caught.)
//     connect-proto  createConnectTransport({baseUrl, httpVersion: "2", useBinaryFormat: true})
//   Every request is checked against the descriptor before it is sent (unknown field, wrong oneof
//   shape, wrong scalar type → the check fails locally), and every binary response is checked for
//   unknown fields (`$unknown`: a field number ZITADEL's descriptor does not have).
//   Scenario: AddOrganization, CreateUser (human + machine), AddPersonalAccessToken,
//   CreateAdministrator, AddHumanUser (v2beta, v2), GetUserByID (v2beta, v2),
//   CreatePasskeyRegistrationLink (v2beta, v2: returnCode / sendLink / no medium; sequences;
//   org-scoped caller; cross-org; error codes and zitadel.v1.ErrorDetail), DeactivateUser,
//   DeleteUser; the lookups a login UI makes: ListUsers (queries, nesting, paging, rows filtered by
//   permission), ListAuthenticationMethodTypes, ListOrganizations, SettingsService
//   GetLoginSettings / GetBrandingSettings / GetSecuritySettings / GetActiveIdentityProviders;
//   the Session API a login UI drives: CreateSession (checks.user + webAuthN challenge, and
//   username-less), GetSession, ListSessions, SetSession (lifetime → new token, old one refused),
//   DeleteSession, with ZITADEL's error ids for an unknown session, a foreign rpId, a wrong token,
//   a negative lifetime; then a software passkey (ES256, node:crypto) is registered through
//   RegisterPasskey / VerifyPasskeyRegistration and signs in: SetSession with its assertion
//   (factors.webAuthN), a replayed assertion refused, and a username-less sign-in.
//   OpenID Connect, as a login UI finishes a sign-in: a project and an OIDC app (user agent, PKCE,
//   no secret) made with plain Connect JSON (ProjectService / ApplicationService v2 are not in
//   @zitadel/proto 1.3.1), /oauth/v2/authorize (302 to the login page with a V2_ id), then
//   OIDCService GetAuthRequest (fields, prompt / max_age, unknown id, no permission) and
//   CreateCallback (the passkey session → code + state, twice → COMMAND-Sx208nt, an error reason →
//   error + error_description + state, a session without a passkey check → OIDC-pk3yR, a wrong
//   session token, unknown id, no permission), and the code exchanged at /oauth/v2/token for an
//   id_token (signature checked with /oauth/v2/keys, nonce, aud, sub), a replayed code refused.
//   The OIDC checks run once more over REST (GET / POST /v2/oidc/auth_requests/{id}, transport
//   "rest", within the first selected transport's scenario): responses are parsed with
//   fromJson(ZITADEL's descriptor) (unknown fields are an error), errors must carry the HTTP status
//   grpc-gateway maps their code to.
//   All names carry a random suffix, so it can run repeatedly against one server.
//
// Output: one line per check, "PASS <transport> <check>" or "FAIL <transport> <check>: <reason>",
// then "N passed, M failed". Exit code 1 if anything failed, 2 on bad configuration.

import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";
import { create, fromJson, isMessage, toJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { ErrorDetailSchema } from "@zitadel/proto/zitadel/message_pb.js";
import { ErrorReason, Prompt } from "@zitadel/proto/zitadel/oidc/v2/authorization_pb.js";
import { OIDCService } from "@zitadel/proto/zitadel/oidc/v2/oidc_service_pb.js";
import { OrganizationService } from "@zitadel/proto/zitadel/org/v2/org_service_pb.js";
import { SessionService } from "@zitadel/proto/zitadel/session/v2/session_service_pb.js";
import { SettingsService } from "@zitadel/proto/zitadel/settings/v2/settings_service_pb.js";
import { InternalPermissionService } from "@zitadel/proto/zitadel/internal_permission/v2beta/internal_permission_service_pb.js";
import { UserService as UserServiceV2 } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { UserService as UserServiceV2beta } from "@zitadel/proto/zitadel/user/v2beta/user_service_pb.js";

// ---------------------------------------------------------------------------------------------
// configuration

const BASE_URL = (process.env.PASSLINK_URL ?? "").replace(/\/+$/, "");
const ADMIN_TOKEN = process.env.PASSLINK_TOKEN ?? "";
const TIMEOUT_MS = Number(process.env.PASSLINK_TIMEOUT_MS ?? 15000);
if (!BASE_URL || !ADMIN_TOKEN) {
  console.error("PASSLINK_URL and PASSLINK_TOKEN must be set (see the header of conformance.mjs)");
  process.exit(2);
}

const TRANSPORTS = {
  grpc: () => createGrpcTransport({ baseUrl: BASE_URL }),
  "grpc-web": () => createGrpcWebTransport({ baseUrl: BASE_URL, httpVersion: "1.1" }),
  "connect-json": () =>
    createConnectTransport({
      baseUrl: BASE_URL,
      httpVersion: "1.1",
      // connect-node defaults to the BINARY format (useBinaryFormat ?? true), so JSON must be asked for.
      useBinaryFormat: false,
      // connect-es ignores unknown JSON fields by default; for conformance they are an error.
      jsonOptions: { ignoreUnknownFields: false },
    }),
  "connect-proto": () =>
    createConnectTransport({ baseUrl: BASE_URL, httpVersion: "2", useBinaryFormat: true }),
};
const selected = (process.env.PASSLINK_TRANSPORTS ?? Object.keys(TRANSPORTS).join(","))
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
for (const name of selected) {
  if (!TRANSPORTS[name]) {
    console.error(`unknown transport "${name}" in PASSLINK_TRANSPORTS; known: ${Object.keys(TRANSPORTS).join(", ")}`);
    process.exit(2);
  }
}

const URL_TEMPLATE =
  "https://example.com/passkey/register?userID={{.UserID}}&orgID={{.OrgID}}&codeID={{.CodeID}}&code={{.Code}}";
const UNKNOWN_USER_ID = "999999999999999999";
// The relying party id passlink serves by default: the host of its --external-url, which is
// http://localhost:<port> when it listens on loopback.
const RP_ID = process.env.PASSLINK_RP_ID || "localhost";
// The WebAuthn origin the software passkey claims: passlink's external URL.
const BASE_PORT = new URL(BASE_URL).port;
const ORIGIN = process.env.PASSLINK_ORIGIN || `http://${RP_ID}${BASE_PORT ? `:${BASE_PORT}` : ""}`;

// ---------------------------------------------------------------------------------------------
// reporting

let passed = 0;
let failed = 0;

class Abort extends Error {}

function report(ok, transport, name, reason) {
  if (ok) {
    passed++;
    console.log(`PASS ${transport} ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${transport} ${name}: ${reason}`);
  }
}

function describeError(e) {
  if (e instanceof ConnectError) {
    const details = e.findDetails(ErrorDetailSchema).map((d) => `${d.id}: ${d.message}`);
    return `ConnectError ${Code[e.code]} "${e.rawMessage}"${details.length ? ` details=[${details.join("; ")}]` : ""}${e.cause ? ` cause=${e.cause}` : ""}`;
  }
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

function assertEq(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${fmt(expected)}, got ${fmt(actual)}`);
  }
}

function fmt(v) {
  if (typeof v === "bigint") return `${v}n`;
  if (v === undefined) return "undefined";
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x));
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------------------------------------
// descriptor-strict request building and response checking

// Throws if `init` uses a key that is not a field/oneof of `desc`, sets a oneof member directly,
// uses a wrong oneof shape or a wrong scalar type. protobuf-es would silently drop unknown keys,
// so without this a typo in this script would go unnoticed.
function validateInit(desc, init, path) {
  if (init === undefined || init === null) return;
  // google.protobuf.Struct fields are plain JSON objects in protobuf-es.
  if (desc.typeName === "google.protobuf.Struct") return;
  if (isMessage(init)) {
    assert(init.$typeName === desc.typeName, `${path}: message ${init.$typeName}, expected ${desc.typeName}`);
    return;
  }
  assert(typeof init === "object" && !Array.isArray(init), `${path}: expected an object for ${desc.typeName}`);
  for (const [key, value] of Object.entries(init)) {
    const oneof = desc.oneofs.find((o) => o.localName === key);
    if (oneof) {
      assert(value && typeof value === "object" && "case" in value,
        `${path}.${key}: oneof ${oneof.name} of ${desc.typeName} must be {case, value}`);
      if (value.case === undefined) continue;
      const member = oneof.fields.find((f) => f.localName === value.case);
      assert(member, `${path}.${key}: "${value.case}" is not a member of oneof ${oneof.name} (members: ${oneof.fields.map((f) => f.localName).join(", ")})`);
      validateField(member, value.value, `${path}.${key}.${value.case}`);
      continue;
    }
    const field = desc.fields.find((f) => f.localName === key);
    assert(field, `${path}.${key}: ${desc.typeName} has no field "${key}" (fields: ${desc.fields.map((f) => f.localName).join(", ")}; oneofs: ${desc.oneofs.map((o) => o.localName).join(", ") || "none"})`);
    assert(!field.oneof || field.oneof.kind !== "oneof" || field.proto.proto3Optional,
      `${path}.${key}: field is a member of oneof "${field.oneof?.localName}"; set it as {case: "${key}", value}`);
    validateField(field, value, `${path}.${key}`);
  }
}

const SCALAR_JS = {
  1: "number", 2: "number", 3: "bigint", 4: "bigint", 5: "number", 6: "bigint", 7: "number",
  8: "boolean", 9: "string", 12: "bytes", 13: "number", 15: "number", 16: "bigint", 17: "number", 18: "bigint",
};

function validateScalar(scalar, value, path) {
  const want = SCALAR_JS[scalar];
  if (want === "bytes") {
    assert(value instanceof Uint8Array, `${path}: expected Uint8Array`);
  } else {
    assert(typeof value === want, `${path}: expected ${want}, got ${typeof value}`);
  }
}

function validateField(field, value, path) {
  if (value === undefined) return;
  switch (field.fieldKind) {
    case "scalar":
      validateScalar(field.scalar, value, path);
      break;
    case "enum":
      assert(typeof value === "number", `${path}: expected an enum number`);
      break;
    case "message":
      validateInit(field.message, value, path);
      break;
    case "list":
      assert(Array.isArray(value), `${path}: expected an array`);
      value.forEach((v, i) => {
        if (field.listKind === "message") validateInit(field.message, v, `${path}[${i}]`);
        else if (field.listKind === "scalar") validateScalar(field.scalar, v, `${path}[${i}]`);
      });
      break;
    case "map":
      assert(typeof value === "object", `${path}: expected an object for a map`);
      break;
  }
}

// Walks a decoded response and returns paths of messages that carry unknown fields (field numbers
// that are not in ZITADEL's descriptor; only visible with the binary codecs).
function findUnknown(msg, path = "") {
  const out = [];
  if (!isMessage(msg)) return out;
  if (msg.$unknown && msg.$unknown.length) {
    out.push(`${path || msg.$typeName} has unknown field number(s) ${msg.$unknown.map((u) => u.no).join(",")}`);
  }
  for (const [k, v] of Object.entries(msg)) {
    if (k.startsWith("$")) continue;
    if (Array.isArray(v)) v.forEach((x, i) => out.push(...findUnknown(x, `${path}.${k}[${i}]`)));
    else if (v && typeof v === "object" && "case" in v && "value" in v) out.push(...findUnknown(v.value, `${path}.${k}.${v.case}`));
    else if (isMessage(v)) out.push(...findUnknown(v, `${path}.${k}`));
  }
  return out;
}

// A client whose methods take (init, token): the request is validated against the descriptor,
// built with create(), sent with the bearer token, and the response checked for unknown fields.
function strictClient(service, transport) {
  const client = createClient(service, transport);
  const out = {};
  for (const [localName, method] of Object.entries(service.method)) {
    out[localName] = async (init, token) => {
      validateInit(method.input, init, `${method.input.typeName}`);
      const req = create(method.input, init);
      const res = await client[localName](req, {
        headers: { authorization: `Bearer ${token}` },
        timeoutMs: TIMEOUT_MS,
      });
      const unknown = findUnknown(res);
      if (unknown.length) throw new Error(`response ${method.output.typeName}: ${unknown.join("; ")}`);
      return res;
    };
  }
  return out;
}

// grpc-gateway's HTTP status of each gRPC code (runtime.HTTPStatusFromCode), as ZITADEL's REST answers.
const HTTP_STATUS = {
  [Code.Canceled]: 499, [Code.Unknown]: 500, [Code.InvalidArgument]: 400, [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404, [Code.AlreadyExists]: 409, [Code.PermissionDenied]: 403, [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400, [Code.Aborted]: 409, [Code.OutOfRange]: 400, [Code.Unimplemented]: 501,
  [Code.Internal]: 500, [Code.Unavailable]: 503, [Code.DataLoss]: 500, [Code.Unauthenticated]: 401,
};

// A REST (grpc-gateway JSON) method taking (init, token) like strictClient's: the request is validated
// and built from the descriptor; `route(req)` gives its path and the fields the path carries, the
// other fields are the JSON body (not for GET). A 200 answer is parsed with fromJson against ZITADEL's
// descriptor (unknown fields are an error); an error answer {code, message, details} must have the
// HTTP status grpc-gateway gives its code, and becomes a ConnectError with its zitadel.v1.ErrorDetail.
function restMethod(method, httpMethod, route) {
  return async (init, token) => {
    validateInit(method.input, init, `${method.input.typeName}`);
    const req = create(method.input, init);
    const { path, inPath } = route(req);
    let body;
    if (httpMethod !== "GET") {
      const json = toJson(method.input, req);
      for (const k of inPath) delete json[k];
      body = JSON.stringify(json);
    }
    const res = await fetch(`${BASE_URL}${path}`, {
      method: httpMethod,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await res.text();
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${httpMethod} ${path} → ${res.status}, not JSON: ${text.slice(0, 300)}`);
    }
    if (res.status === 200) return fromJson(method.output, parsed, { ignoreUnknownFields: false });
    assert(Number.isInteger(parsed?.code) && parsed.code > 0,
      `${httpMethod} ${path} → ${res.status} without a gRPC code: ${text.slice(0, 300)}`);
    assertEq(res.status, HTTP_STATUS[parsed.code], `${httpMethod} ${path}: HTTP status of ${Code[parsed.code]}`);
    const details = (parsed.details ?? [])
      .filter((d) => d?.["@type"] === `type.googleapis.com/${ErrorDetailSchema.typeName}`)
      .map((d) => ({ desc: ErrorDetailSchema, value: { id: d.id ?? "", message: d.message ?? "" } }));
    throw new ConnectError(parsed.message ?? "", parsed.code, undefined, details);
  };
}

// zitadel.oidc.v2.OIDCService over REST: GET / POST /v2/oidc/auth_requests/{auth_request_id}.
function restOidcClient() {
  const route = (r) => ({ path: `/v2/oidc/auth_requests/${encodeURIComponent(r.authRequestId)}`, inPath: ["authRequestId"] });
  return {
    getAuthRequest: restMethod(OIDCService.method.getAuthRequest, "GET", route),
    createCallback: restMethod(OIDCService.method.createCallback, "POST", route),
  };
}

// A Connect JSON unary call with plain fetch, for services @zitadel/proto 1.3.1 does not describe
// (ProjectService / ApplicationService v2). Returns the parsed JSON; anything but 200 throws.
async function connectJson(rpc, body, token = ADMIN_TOKEN) {
  const res = await fetch(`${BASE_URL}/${rpc}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${rpc} → ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

// The claims of a compact JWS after checking its signature with the server's JWKS (/oauth/v2/keys).
async function verifiedJwtClaims(jwt) {
  const parts = String(jwt ?? "").split(".");
  assert(parts.length === 3, `not a compact JWS: ${fmt(jwt)}`);
  const header = JSON.parse(Buffer.from(parts[0], "base64url"));
  const res = await fetch(`${BASE_URL}/oauth/v2/keys`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  assertEq(res.status, 200, "GET /oauth/v2/keys status");
  const jwk = (await res.json()).keys?.find((k) => k.kid === header.kid);
  assert(jwk, `no key ${fmt(header.kid)} in /oauth/v2/keys`);
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2], "base64url");
  let ok;
  if (header.alg === "RS256") ok = verify("sha256", signed, key, signature);
  else if (header.alg === "ES256") ok = verify("sha256", signed, { key, dsaEncoding: "ieee-p1363" }, signature);
  else if (header.alg === "EdDSA") ok = verify(null, signed, key, signature);
  else throw new Error(`unexpected alg ${fmt(header.alg)}`);
  assert(ok, `the ${header.alg} signature does not verify with key ${header.kid}`);
  return JSON.parse(Buffer.from(parts[1], "base64url"));
}

// ---------------------------------------------------------------------------------------------
// assertion helpers for ZITADEL shapes

function assertTimestampSet(ts, what) {
  assert(ts, `${what} missing`);
  assert(typeof ts.seconds === "bigint", `${what}.seconds is not a bigint`);
  assert(ts.seconds > 0n, `${what}.seconds = ${ts.seconds}`);
}

function assertRecent(ts, what) {
  assertTimestampSet(ts, what);
  assert(typeof ts.nanos === "number" && ts.nanos >= 0 && ts.nanos < 1e9, `${what}.nanos = ${ts.nanos}`);
  const skew = Math.abs(timestampDate(ts).getTime() - Date.now());
  assert(skew <= 60_000, `${what} is ${skew} ms away from now (${timestampDate(ts).toISOString()})`);
}

// integration.AssertDetails: sequence != 0, changeDate within ±1 min, resourceOwner equal.
function assertDetails(details, orgId, what = "details") {
  assert(details, `${what} missing`);
  assert(typeof details.sequence === "bigint", `${what}.sequence is not a bigint`);
  assert(details.sequence > 0n, `${what}.sequence = ${details.sequence}n, want > 0n`);
  assertRecent(details.changeDate, `${what}.changeDate`);
  assertEq(details.resourceOwner, orgId, `${what}.resourceOwner`);
}

function assertNonEmpty(s, what) {
  assert(typeof s === "string" && s.length > 0, `${what} is empty`);
}

// Expects the call to fail with one of `codes`. Returns the ConnectError.
async function expectError(promise, codes, what = "call") {
  codes = Array.isArray(codes) ? codes : [codes];
  let res;
  try {
    res = await promise;
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e; // local validation error etc.
    assert(codes.includes(e.code),
      `${what}: expected ${codes.map((c) => Code[c]).join(" or ")}, got ${describeError(e)}`);
    return e;
  }
  throw new Error(`${what}: expected ${codes.map((c) => Code[c]).join(" or ")}, but it succeeded: ${fmt(res)}`);
}

// ZITADEL error shape: message "<text> (<ID>)", details = [zitadel.v1.ErrorDetail{id, message}].
function assertZitadelError(err, { id, message } = {}) {
  const details = err.findDetails(ErrorDetailSchema);
  assert(details.length >= 1, `no zitadel.v1.ErrorDetail in error details (${describeError(err)})`);
  const d = details[0];
  assertNonEmpty(d.id, "ErrorDetail.id");
  assert(err.rawMessage.endsWith(`(${d.id})`),
    `message "${err.rawMessage}" does not end with "(${d.id})"`);
  if (id !== undefined) assertEq(d.id, id, "ErrorDetail.id");
  if (message !== undefined) {
    assertEq(err.rawMessage, `${message} (${d.id})`, "error message");
    assertEq(d.message, message, "ErrorDetail.message");
  }
  return d;
}

function assertCodeShape(code, what = "code") {
  assert(code, `${what} missing`);
  assert(/^\d+$/.test(code.id), `${what}.id ${fmt(code.id)} is not a decimal id`);
  assert(/^[A-Za-z0-9]{12}$/.test(code.code), `${what}.code ${fmt(code.code)} does not match /^[A-Za-z0-9]{12}$/`);
}

function suffix() {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

function inOneDay() {
  return timestampFromDate(new Date(Date.now() + 24 * 3600 * 1000));
}

// ---------------------------------------------------------------------------------------------
// a software passkey: ES256, "none" attestation, discoverable, user verification always done

// The few CBOR shapes WebAuthn needs: unsigned/negative integers, byte and text strings, maps.
function cbor(v) {
  const head = (major, n) => {
    if (n < 24) return Buffer.from([(major << 5) | n]);
    if (n < 256) return Buffer.from([(major << 5) | 24, n]);
    if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 255]);
    throw new Error(`cbor: length ${n} too large`);
  };
  if (typeof v === "number") return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === "string") return Buffer.concat([head(3, Buffer.byteLength(v)), Buffer.from(v)]);
  if (Buffer.isBuffer(v)) return Buffer.concat([head(2, v.length), v]);
  if (v instanceof Map) {
    return Buffer.concat([head(5, v.size), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)])]);
  }
  throw new Error(`cbor: cannot encode ${typeof v}`);
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const sha256 = (data) => createHash("sha256").update(data).digest();

class SoftPasskey {
  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.privateKey = privateKey;
    this.jwk = publicKey.export({ format: "jwk" });
    this.credId = randomBytes(32);
    this.counter = 0;
    this.userHandle = undefined;
  }

  clientData(type, challenge) {
    return Buffer.from(JSON.stringify({ type, challenge, origin: ORIGIN, crossOrigin: false }));
  }

  // navigator.credentials.create() answered, as PublicKeyCredential JSON.
  register(options) {
    const pk = options?.publicKey;
    assert(pk?.challenge && pk.user?.id, `creation options without challenge or user.id: ${fmt(options)}`);
    assertEq(pk.rp?.id, RP_ID, "creation options rp.id");
    this.userHandle = pk.user.id;
    const cose = new Map([
      [1, 2], [3, -7], [-1, 1],
      [-2, Buffer.from(this.jwk.x, "base64url")], [-3, Buffer.from(this.jwk.y, "base64url")],
    ]);
    const len = Buffer.from([this.credId.length >> 8, this.credId.length & 255]);
    const authData = Buffer.concat([
      sha256(RP_ID), Buffer.from([0x45 /* UP | UV | AT */]), Buffer.alloc(4), Buffer.alloc(16), len, this.credId, cbor(cose),
    ]);
    const attestationObject = cbor(new Map([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]]));
    return {
      id: b64url(this.credId), rawId: b64url(this.credId), type: "public-key",
      response: {
        attestationObject: b64url(attestationObject),
        clientDataJSON: b64url(this.clientData("webauthn.create", pk.challenge)),
      },
    };
  }

  // navigator.credentials.get() answered; each assertion counts up.
  assert(options) {
    const pk = options?.publicKey;
    assert(pk?.challenge, `request options without challenge: ${fmt(options)}`);
    this.counter += 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(this.counter);
    const authData = Buffer.concat([sha256(pk.rpId ?? RP_ID), Buffer.from([0x05 /* UP | UV */]), counter]);
    const clientDataJSON = this.clientData("webauthn.get", pk.challenge);
    const signature = sign("sha256", Buffer.concat([authData, sha256(clientDataJSON)]), this.privateKey);
    return {
      id: b64url(this.credId), rawId: b64url(this.credId), type: "public-key",
      response: {
        authenticatorData: b64url(authData),
        clientDataJSON: b64url(clientDataJSON),
        signature: b64url(signature),
        userHandle: this.userHandle,
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// the scenario, identical for every transport

async function scenario(tname, transport) {
  const org = strictClient(OrganizationService, transport);
  const perm = strictClient(InternalPermissionService, transport);
  const u2 = strictClient(UserServiceV2, transport);
  const u2b = strictClient(UserServiceV2beta, transport);
  const ADMIN = ADMIN_TOKEN;
  const s = {}; // state shared between checks

  // check(): a failing check is reported and the scenario continues (checkVia: under another
  // transport's name, for the REST pass).
  // setup(): a failing setup step is reported and aborts this transport's scenario.
  const checkVia = async (via, name, fn) => {
    try {
      await fn();
      report(true, via, name);
      return true;
    } catch (e) {
      report(false, via, name, describeError(e));
      return false;
    }
  };
  const check = (name, fn) => checkVia(tname, name, fn);
  const setup = async (name, fn) => {
    if (!(await check(name, fn))) throw new Abort(name);
  };
  const need = (...keys) => {
    for (const k of keys) if (!s[k]) throw new Error(`prerequisite "${k}" missing (an earlier check failed)`);
  };

  const sfx = suffix();
  const human = (name) => ({
    profile: { givenName: `Given${name}`, familyName: `Family${name}` },
    email: { email: `${name.toLowerCase()}-${sfx}@example.com`, verification: { case: "isVerified", value: true } },
  });

  // 1. organizations -------------------------------------------------------------------------
  await setup("org.v2 AddOrganization", async () => {
    const res = await org.addOrganization({ name: `passlink-conf-${sfx}` }, ADMIN);
    assertNonEmpty(res.organizationId, "organizationId");
    s.orgId = res.organizationId;
  });
  await setup("org.v2 AddOrganization (second org)", async () => {
    const res = await org.addOrganization({ name: `passlink-conf-other-${sfx}` }, ADMIN);
    assertNonEmpty(res.organizationId, "organizationId");
    assert(res.organizationId !== s.orgId, "second org has the same id as the first");
    s.otherOrgId = res.organizationId;
  });

  // 2. CreateUser (human, machine) -----------------------------------------------------------
  await check("user.v2 CreateUser human", async () => {
    const res = await u2.createUser({
      organizationId: s.orgId,
      username: `human-${sfx}`,
      userType: {
        case: "human",
        value: {
          profile: { givenName: "CreateGiven", familyName: "CreateFamily" },
          email: { email: `human-${sfx}@example.com` },
        },
      },
    }, ADMIN);
    assertNonEmpty(res.id, "id");
    assertRecent(res.creationDate, "creationDate");
    s.createdHumanId = res.id;
  });
  const createMachine = async (label) => {
    const res = await u2.createUser({
      organizationId: s.orgId,
      username: `${label}-${sfx}`,
      userType: { case: "machine", value: { name: `${label} ${sfx}`, description: "passlink conformance" } },
    }, ADMIN);
    assertNonEmpty(res.id, "id");
    assertRecent(res.creationDate, "creationDate");
    return res.id;
  };
  await setup("user.v2 CreateUser machine", async () => {
    s.machineId = await createMachine("machine");
  });

  // 3. AddPersonalAccessToken ----------------------------------------------------------------
  const addPat = async (userId) => {
    const res = await u2.addPersonalAccessToken({ userId, expirationDate: inOneDay() }, ADMIN);
    assertNonEmpty(res.token, "token");
    assertNonEmpty(res.tokenId, "tokenId");
    assertRecent(res.creationDate, "creationDate");
    return res.token;
  };
  await setup("user.v2 AddPersonalAccessToken", async () => {
    s.orgOwnerPat = await addPat(s.machineId);
  });

  // 4. CreateAdministrator -------------------------------------------------------------------
  const grant = async (userId, orgId, roles) => {
    const res = await perm.createAdministrator({
      userId,
      // ResourceType is a message whose oneof is also named "resource".
      resource: { resource: { case: "organizationId", value: orgId } },
      roles,
    }, ADMIN);
    assertRecent(res.creationDate, "creationDate");
  };
  await setup("internal_permission.v2beta CreateAdministrator ORG_OWNER", async () => {
    await grant(s.machineId, s.orgId, ["ORG_OWNER"]);
  });

  // 5. AddHumanUser (v2beta, v2) -------------------------------------------------------------
  await check("user.v2beta AddHumanUser", async () => {
    const res = await u2b.addHumanUser({
      username: `beta-${sfx}`,
      organization: { org: { case: "orgId", value: s.orgId } },
      ...human("Beta"),
    }, ADMIN);
    assertNonEmpty(res.userId, "userId");
    assertDetails(res.details, s.orgId);
    s.betaUserId = res.userId;
  });
  await check("user.v2 AddHumanUser", async () => {
    const res = await u2.addHumanUser({
      username: `v2-${sfx}`,
      organization: { org: { case: "orgId", value: s.orgId } },
      ...human("Vtwo"),
    }, ADMIN);
    assertNonEmpty(res.userId, "userId");
    assertDetails(res.details, s.orgId);
    s.v2UserId = res.userId;
  });
  await check("user.v2 AddHumanUser (second org)", async () => {
    const res = await u2.addHumanUser({
      username: `victim-${sfx}`,
      organization: { org: { case: "orgId", value: s.otherOrgId } },
      ...human("Victim"),
    }, ADMIN);
    assertNonEmpty(res.userId, "userId");
    assertDetails(res.details, s.otherOrgId);
    s.victimId = res.userId;
  });

  // 6. GetUserByID (v2beta, v2) --------------------------------------------------------------
  for (const [ver, svc] of [["v2beta", u2b], ["v2", u2]]) {
    await check(`user.${ver} GetUserByID (AddHumanUser user)`, async () => {
      const [id, given] = ver === "v2beta" ? [s.betaUserId, "GivenBeta"] : [s.v2UserId, "GivenVtwo"];
      need(ver === "v2beta" ? "betaUserId" : "v2UserId");
      const res = await svc.getUserByID({ userId: id }, ADMIN);
      assert(res.user, "user missing");
      assertEq(res.user.userId, id, "user.userId");
      assertEq(res.user.type.case, "human", "user.type.case");
      assertEq(res.user.type.value.profile?.givenName, given, "user.type.value.profile.givenName");
      assert(res.details, "details missing");
      assertEq(res.details.resourceOwner, s.orgId, "details.resourceOwner");
    });
    await check(`user.${ver} GetUserByID (CreateUser human)`, async () => {
      need("createdHumanId");
      const res = await svc.getUserByID({ userId: s.createdHumanId }, ADMIN);
      assertEq(res.user?.userId, s.createdHumanId, "user.userId");
      assertEq(res.user.type.case, "human", "user.type.case");
      assertEq(res.user.type.value.profile?.givenName, "CreateGiven", "user.type.value.profile.givenName");
      assertEq(res.user.type.value.profile?.familyName, "CreateFamily", "user.type.value.profile.familyName");
      assertEq(res.details?.resourceOwner, s.orgId, "details.resourceOwner");
    });
    await check(`user.${ver} GetUserByID (machine)`, async () => {
      const res = await svc.getUserByID({ userId: s.machineId }, ADMIN);
      assertEq(res.user?.userId, s.machineId, "user.userId");
      assertEq(res.user.type.case, "machine", "user.type.case");
      assertEq(res.details?.resourceOwner, s.orgId, "details.resourceOwner");
    });
  }

  // callers with restricted roles (used in 9) --------------------------------------------------
  await check("setup: machine user without roles + PAT", async () => {
    const id = await createMachine("noroles");
    s.noRolesPat = await addPat(id);
  });
  await check("setup: machine user with ORG_USER_MANAGER + PAT", async () => {
    const id = await createMachine("usermgr");
    await grant(id, s.orgId, ["ORG_USER_MANAGER"]);
    s.userManagerPat = await addPat(id);
  });

  // 7.–9. CreatePasskeyRegistrationLink, per API version --------------------------------------
  for (const [ver, svc] of [["v2beta", u2b], ["v2", u2]]) {
    const key = ver === "v2beta" ? "betaUserId" : "v2UserId";
    const link = (init, token = ADMIN) => svc.createPasskeyRegistrationLink(init, token);
    const sequences = [];
    const p = `user.${ver} CreatePasskeyRegistrationLink`;

    // 7. success variants
    await check(`${p} returnCode`, async () => {
      need(key);
      const res = await link({ userId: s[key], medium: { case: "returnCode", value: {} } });
      assertDetails(res.details, s.orgId);
      assertCodeShape(res.code);
      sequences.push(res.details.sequence);
    });
    await check(`${p} sendLink urlTemplate`, async () => {
      need(key);
      const res = await link({ userId: s[key], medium: { case: "sendLink", value: { urlTemplate: URL_TEMPLATE } } });
      assertDetails(res.details, s.orgId);
      assertEq(res.code, undefined, "code");
      sequences.push(res.details.sequence);
    });
    await check(`${p} sendLink {}`, async () => {
      need(key);
      const res = await link({ userId: s[key], medium: { case: "sendLink", value: {} } });
      assertDetails(res.details, s.orgId);
      assertEq(res.code, undefined, "code");
      sequences.push(res.details.sequence);
    });
    await check(`${p} no medium`, async () => {
      need(key);
      const res = await link({ userId: s[key] });
      assertDetails(res.details, s.orgId);
      assertEq(res.code, undefined, "code");
      sequences.push(res.details.sequence);
    });
    await check(`${p} returnCode again (new code id)`, async () => {
      need(key);
      const res = await link({ userId: s[key], medium: { case: "returnCode", value: {} } });
      assertDetails(res.details, s.orgId);
      assertCodeShape(res.code);
      sequences.push(res.details.sequence);
    });
    await check(`${p} sequences strictly increase`, async () => {
      assert(sequences.length >= 2, `only ${sequences.length} successful calls to compare`);
      for (let i = 1; i < sequences.length; i++) {
        assert(sequences[i] > sequences[i - 1], `sequences not strictly increasing: ${sequences.map((x) => `${x}n`).join(", ")}`);
      }
    });

    // 8. org-scoped caller (ORG_OWNER of the first org)
    await check(`${p} as ORG_OWNER, user in own org`, async () => {
      need(key, "orgOwnerPat");
      const res = await link({ userId: s[key], medium: { case: "returnCode", value: {} } }, s.orgOwnerPat);
      assertDetails(res.details, s.orgId);
      assertCodeShape(res.code);
    });
    await check(`${p} as ORG_OWNER, user in another org → NotFound`, async () => {
      need("victimId", "orgOwnerPat");
      const err = await expectError(
        link({ userId: s.victimId, medium: { case: "returnCode", value: {} } }, s.orgOwnerPat),
        Code.NotFound);
      assertZitadelError(err);
    });
    await check(`${p} IAM_OWNER, user in second org (control)`, async () => {
      need("victimId");
      const res = await link({ userId: s.victimId, medium: { case: "returnCode", value: {} } });
      assertDetails(res.details, s.otherOrgId);
      assertCodeShape(res.code);
    });

    // 9. errors
    await check(`${p} unknown user → NotFound (COMMAND-M9dsd)`, async () => {
      const err = await expectError(
        link({ userId: UNKNOWN_USER_ID, medium: { case: "returnCode", value: {} } }), Code.NotFound);
      assertZitadelError(err, { id: "COMMAND-M9dsd", message: "User could not be found" });
    });
    await check(`${p} invalid token → Unauthenticated`, async () => {
      need(key);
      const err = await expectError(
        link({ userId: s[key], medium: { case: "returnCode", value: {} } }, `invalid-${sfx}`),
        Code.Unauthenticated);
      assertZitadelError(err);
    });
    await check(`${p} machine user as target → FailedPrecondition`, async () => {
      const err = await expectError(
        link({ userId: s.machineId, medium: { case: "returnCode", value: {} } }), Code.FailedPrecondition);
      assertZitadelError(err);
    });
    await check(`${p} urlTemplate "{{" → InvalidArgument DOMAIN-oGh5e`, async () => {
      need(key);
      const err = await expectError(
        link({ userId: s[key], medium: { case: "sendLink", value: { urlTemplate: "{{" } } }), Code.InvalidArgument);
      assertZitadelError(err, { id: "DOMAIN-oGh5e" });
    });
    await check(`${p} urlTemplate {{.LoginName}} → InvalidArgument DOMAIN-ieYa7`, async () => {
      need(key);
      const err = await expectError(
        link({ userId: s[key], medium: { case: "sendLink", value: { urlTemplate: "https://x/{{.LoginName}}" } } }),
        Code.InvalidArgument);
      assertZitadelError(err, { id: "DOMAIN-ieYa7" });
    });
    await check(`${p} urlTemplate "" → InvalidArgument`, async () => {
      need(key);
      await expectError(
        link({ userId: s[key], medium: { case: "sendLink", value: { urlTemplate: "" } } }), Code.InvalidArgument);
    });
    await check(`${p} userId "" → InvalidArgument`, async () => {
      await expectError(link({ userId: "", medium: { case: "returnCode", value: {} } }), Code.InvalidArgument);
    });
    await check(`${p} caller without any role → NotFound or PermissionDenied`, async () => {
      need(key, "noRolesPat");
      const err = await expectError(
        link({ userId: s[key], medium: { case: "returnCode", value: {} } }, s.noRolesPat),
        [Code.NotFound, Code.PermissionDenied]);
      assertZitadelError(err);
    });
    await check(`${p} caller with only ORG_USER_MANAGER → PermissionDenied`, async () => {
      need(key, "userManagerPat");
      const err = await expectError(
        link({ userId: s[key], medium: { case: "returnCode", value: {} } }, s.userManagerPat),
        Code.PermissionDenied);
      assertZitadelError(err);
    });
  }

  // 10. DeactivateUser / DeleteUser, then a link for the deleted user ----------------------------
  await check("user.v2 AddHumanUser (to delete)", async () => {
    const res = await u2.addHumanUser({
      username: `doomed-${sfx}`,
      organization: { org: { case: "orgId", value: s.orgId } },
      ...human("Doomed"),
    }, ADMIN);
    assertNonEmpty(res.userId, "userId");
    s.doomedId = res.userId;
  });
  await check("user.v2 DeactivateUser", async () => {
    need("doomedId");
    const res = await u2.deactivateUser({ userId: s.doomedId }, ADMIN);
    assertDetails(res.details, s.orgId);
  });
  await check("user.v2 DeleteUser", async () => {
    need("doomedId");
    const res = await u2.deleteUser({ userId: s.doomedId }, ADMIN);
    assertDetails(res.details, s.orgId);
    s.deleted = true;
  });
  for (const [ver, svc] of [["v2beta", u2b], ["v2", u2]]) {
    await check(`user.${ver} CreatePasskeyRegistrationLink deleted user → NotFound`, async () => {
      need("deleted");
      const err = await expectError(
        svc.createPasskeyRegistrationLink({ userId: s.doomedId, medium: { case: "returnCode", value: {} } }, ADMIN),
        Code.NotFound);
      assertZitadelError(err);
    });
  }

  // 11. lookups a login UI makes before a sign-in ---------------------------------------------
  const settings = strictClient(SettingsService, transport);
  const q = (kase, value) => ({ query: { case: kase, value } });
  await check("user.v2 ListUsers loginNameQuery EQUALS_IGNORE_CASE", async () => {
    need("v2UserId");
    const res = await u2.listUsers({
      queries: [q("loginNameQuery", { loginName: `V2-${sfx}`.toUpperCase(), method: 1 /* EQUALS_IGNORE_CASE */ })],
    }, ADMIN);
    assertEq(res.details?.totalResult, 1n, "details.totalResult");
    assertRecent(res.details.timestamp, "details.timestamp");
    assertEq(res.result.length, 1, "result.length");
    assertEq(res.result[0].userId, s.v2UserId, "result[0].userId");
    assertEq(res.result[0].type.case, "human", "result[0].type.case");
    assertEq(res.result[0].type.value.profile?.givenName, "GivenVtwo", "profile.givenName");
    assertDetails(res.result[0].details, s.orgId, "result[0].details");
  });
  await check("user.v2 ListUsers org + type + or/not nesting, paged", async () => {
    const res = await u2.listUsers({
      query: { offset: 0n, limit: 1, asc: true },
      queries: [
        q("organizationIdQuery", { organizationId: s.orgId }),
        q("orQuery", { queries: [q("typeQuery", { type: 1 /* HUMAN */ }), q("notQuery", { query: q("typeQuery", { type: 2 }) })] }),
      ],
    }, ADMIN);
    // The humans of the org: CreateUser, AddHumanUser v2beta and v2 (the deleted one is gone).
    assertEq(res.details?.totalResult, 3n, "details.totalResult");
    assertEq(res.result.length, 1, "result.length (limit 1)");
  });
  await check("user.v2 ListUsers as ORG_OWNER: other org's user left out", async () => {
    need("v2UserId", "victimId", "orgOwnerPat");
    const res = await u2.listUsers({ queries: [q("inUserIdsQuery", { userIds: [s.v2UserId, s.victimId] })] }, s.orgOwnerPat);
    assertEq(res.result.map((u) => u.userId).join(), s.v2UserId, "result ids");
    assertEq(res.details?.totalResult, 1n, "details.totalResult");
  });
  await check("user.v2 ListUsers empty query → InvalidArgument (GRPC-vR9nC)", async () => {
    const err = await expectError(u2.listUsers({ queries: [{}] }, ADMIN), Code.InvalidArgument);
    assertZitadelError(err, { id: "GRPC-vR9nC" });
  });
  await check("user.v2 ListAuthenticationMethodTypes (no passkey yet)", async () => {
    need("v2UserId");
    const res = await u2.listAuthenticationMethodTypes({ userId: s.v2UserId }, ADMIN);
    assertEq(res.authMethodTypes.length, 0, "authMethodTypes.length");
    assertEq(res.details?.totalResult, 0n, "details.totalResult");
  });
  await check("user.v2 ListAuthenticationMethodTypes unknown user → NotFound", async () => {
    const err = await expectError(u2.listAuthenticationMethodTypes({ userId: UNKNOWN_USER_ID }, ADMIN), Code.NotFound);
    assertZitadelError(err, { id: "COMMAND-M9dsd" });
  });
  await check("org.v2 ListOrganizations nameQuery", async () => {
    const res = await org.listOrganizations({
      queries: [q("nameQuery", { name: `passlink-conf-${sfx}`, method: 0 /* EQUALS */ })],
    }, ADMIN);
    assertEq(res.details?.totalResult, 1n, "details.totalResult");
    const o = res.result[0];
    assertEq(o?.id, s.orgId, "result[0].id");
    assertEq(o.name, `passlink-conf-${sfx}`, "result[0].name");
    assertEq(o.state, 1, "result[0].state (ACTIVE)");
    assertDetails(o.details, s.orgId, "result[0].details");
  });
  await check("org.v2 ListOrganizations as ORG_OWNER: only its org", async () => {
    need("orgOwnerPat");
    const res = await org.listOrganizations({
      sortingColumn: 1 /* NAME */,
      queries: [q("nameQuery", { name: sfx, method: 4 /* CONTAINS */ })],
    }, s.orgOwnerPat);
    assertEq(res.result.map((o) => o.id).join(), s.orgId, "result ids");
  });
  await check("org.v2 ListOrganizations defaultQuery", async () => {
    const res = await org.listOrganizations({ queries: [q("defaultQuery", {})] }, ADMIN);
    assertEq(res.details?.totalResult, 1n, "details.totalResult");
  });
  await check("settings.v2 GetLoginSettings: passkeys only", async () => {
    const res = await settings.getLoginSettings({}, ADMIN);
    const l = res.settings;
    assert(l, "settings missing");
    assertEq(l.passkeysType, 1, "passkeysType (ALLOWED)");
    assertEq(l.allowUsernamePassword, false, "allowUsernamePassword");
    assertEq(l.allowRegister, false, "allowRegister");
    assertEq(l.allowExternalIdp, false, "allowExternalIdp");
    assertEq(l.secondFactors.length, 0, "secondFactors.length");
    assertEq(l.resourceOwnerType, 1, "resourceOwnerType (INSTANCE)");
    assertEq(l.multiFactorCheckLifetime?.seconds, 43200n, "multiFactorCheckLifetime");
    assertNonEmpty(res.details?.resourceOwner, "details.resourceOwner");
  });
  await check("settings.v2 GetLoginSettings ctx.orgId as ORG_OWNER", async () => {
    need("orgOwnerPat");
    const res = await settings.getLoginSettings({ ctx: { resourceOwner: { case: "orgId", value: s.orgId } } }, s.orgOwnerPat);
    assertEq(res.settings?.passkeysType, 1, "passkeysType");
  });
  await check("settings.v2 GetLoginSettings without policy.read → PermissionDenied", async () => {
    need("noRolesPat");
    const err = await expectError(settings.getLoginSettings({}, s.noRolesPat), Code.PermissionDenied);
    assertZitadelError(err, { id: "AUTH-5mWD2" });
  });
  await check("settings.v2 GetBrandingSettings", async () => {
    const res = await settings.getBrandingSettings({}, ADMIN);
    assertEq(res.settings?.themeMode, 1, "themeMode (AUTO)");
    assertEq(res.settings.resourceOwnerType, 1, "resourceOwnerType (INSTANCE)");
  });
  await check("settings.v2 GetSecuritySettings", async () => {
    const res = await settings.getSecuritySettings({}, ADMIN);
    assertEq(res.settings?.embeddedIframe?.enabled, false, "embeddedIframe.enabled");
    assertEq(res.settings.enableImpersonation, false, "enableImpersonation");
  });
  await check("settings.v2 GetSecuritySettings as ORG_OWNER → PermissionDenied", async () => {
    need("orgOwnerPat");
    await expectError(settings.getSecuritySettings({}, s.orgOwnerPat), Code.PermissionDenied);
  });
  await check("settings.v2 GetActiveIdentityProviders: none", async () => {
    const res = await settings.getActiveIdentityProviders({}, ADMIN);
    assertEq(res.identityProviders.length, 0, "identityProviders.length");
  });

  // 12. the Session API a login UI drives ------------------------------------------------------
  const sessions = strictClient(SessionService, transport);
  const webAuthN = (domain = RP_ID) => ({ webAuthN: { domain, userVerificationRequirement: 1 /* REQUIRED */ } });
  await check("session.v2 CreateSession checks.user + webAuthN challenge", async () => {
    need("v2UserId");
    const res = await sessions.createSession({
      checks: { user: { search: { case: "userId", value: s.v2UserId } } },
      challenges: webAuthN(),
    }, ADMIN);
    assertNonEmpty(res.sessionId, "sessionId");
    assertNonEmpty(res.sessionToken, "sessionToken");
    assert(res.details, "details missing");
    assert(res.details.sequence > 0n, `details.sequence = ${res.details.sequence}`);
    assertRecent(res.details.changeDate, "details.changeDate");
    assertNonEmpty(res.details.resourceOwner, "details.resourceOwner (instance)");
    const pk = res.challenges?.webAuthN?.publicKeyCredentialRequestOptions?.publicKey;
    assert(pk && typeof pk === "object", "challenges.webAuthN.publicKeyCredentialRequestOptions.publicKey missing");
    assert(typeof pk.challenge === "string" && /^[A-Za-z0-9_-]{16,}$/.test(pk.challenge),
      `publicKey.challenge ${fmt(pk.challenge)} is not base64url`);
    assertEq(pk.rpId, RP_ID, "publicKey.rpId");
    assertEq(pk.userVerification, "required", "publicKey.userVerification");
    // The user has no passkey yet: nothing to allow, but the list is there (not username-less).
    assert(pk.allowCredentials === undefined || Array.isArray(pk.allowCredentials),
      `publicKey.allowCredentials ${fmt(pk.allowCredentials)} is not a list`);
    s.sessionId = res.sessionId;
    s.sessionToken = res.sessionToken;
  });
  await check("session.v2 GetSession with its token", async () => {
    need("sessionId", "sessionToken");
    const res = await sessions.getSession({ sessionId: s.sessionId, sessionToken: s.sessionToken }, ADMIN);
    const se = res.session;
    assertEq(se?.id, s.sessionId, "session.id");
    assertRecent(se.creationDate, "session.creationDate");
    assertRecent(se.changeDate, "session.changeDate");
    assert(se.sequence > 0n, `session.sequence = ${se.sequence}`);
    const u = se.factors?.user;
    assert(u, "session.factors.user missing");
    assertRecent(u.verifiedAt, "factors.user.verifiedAt");
    assertEq(u.id, s.v2UserId, "factors.user.id");
    assertEq(u.loginName, `v2-${sfx}`, "factors.user.loginName");
    assertNonEmpty(u.displayName, "factors.user.displayName");
    assertEq(u.organizationId, s.orgId, "factors.user.organizationId");
    assertEq(se.factors.webAuthN, undefined, "factors.webAuthN (no assertion yet)");
    assertEq(se.expirationDate, undefined, "session.expirationDate (no lifetime)");
  });
  await check("session.v2 ListSessions userIdQuery", async () => {
    need("sessionId");
    const res = await sessions.listSessions({
      queries: [{ query: { case: "userIdQuery", value: { id: s.v2UserId } } }],
    }, ADMIN);
    assertEq(res.sessions.map((x) => x.id).join(), s.sessionId, "session ids");
    assertEq(res.details?.totalResult, 1n, "details.totalResult");
    assertEq(res.sessions[0].factors?.user?.id, s.v2UserId, "sessions[0].factors.user.id");
  });
  await check("session.v2 SetSession lifetime → new token, expirationDate", async () => {
    need("sessionId", "sessionToken");
    const res = await sessions.setSession({ sessionId: s.sessionId, lifetime: { seconds: 3600n } }, ADMIN);
    assertNonEmpty(res.sessionToken, "sessionToken");
    assert(res.sessionToken !== s.sessionToken, "SetSession answered the old token");
    assertRecent(res.details?.changeDate, "details.changeDate");
    const got = await sessions.getSession({ sessionId: s.sessionId, sessionToken: res.sessionToken }, ADMIN);
    const exp = got.session?.expirationDate;
    assertTimestampSet(exp, "session.expirationDate");
    const inAnHour = timestampDate(exp).getTime() - Date.now();
    assert(Math.abs(inAnHour - 3600_000) <= 60_000, `expirationDate is ${inAnHour} ms away, want about an hour`);
    s.oldSessionToken = s.sessionToken;
    s.sessionToken = res.sessionToken;
  });
  await check("session.v2 GetSession with the replaced token → PermissionDenied (QUERY-dsfr3)", async () => {
    need("sessionId", "oldSessionToken");
    const err = await expectError(
      sessions.getSession({ sessionId: s.sessionId, sessionToken: s.oldSessionToken }, ADMIN), Code.PermissionDenied);
    assertZitadelError(err, { id: "QUERY-dsfr3" });
  });
  await check("session.v2 SetSession negative lifetime → InvalidArgument (COMMAND-asEG4)", async () => {
    need("sessionId");
    const err = await expectError(
      sessions.setSession({ sessionId: s.sessionId, lifetime: { seconds: -1n } }, ADMIN), Code.InvalidArgument);
    assertZitadelError(err, { id: "COMMAND-asEG4" });
  });
  await check("session.v2 GetSession unknown session → NotFound (QUERY-SFeaa)", async () => {
    const err = await expectError(sessions.getSession({ sessionId: UNKNOWN_USER_ID }, ADMIN), Code.NotFound);
    assertZitadelError(err, { id: "QUERY-SFeaa" });
  });
  await check("session.v2 CreateSession foreign rpId → InvalidArgument (WEBAUTHN-rp1d)", async () => {
    need("v2UserId");
    const err = await expectError(sessions.createSession({
      checks: { user: { search: { case: "userId", value: s.v2UserId } } },
      challenges: webAuthN("evil.example"),
    }, ADMIN), Code.InvalidArgument);
    assertZitadelError(err, { id: "WEBAUTHN-rp1d" });
  });
  await check("session.v2 DeleteSession with a wrong token → PermissionDenied (COMMAND-sGr42)", async () => {
    need("sessionId", "oldSessionToken");
    const err = await expectError(
      sessions.deleteSession({ sessionId: s.sessionId, sessionToken: s.oldSessionToken }, ADMIN), Code.PermissionDenied);
    assertZitadelError(err, { id: "COMMAND-sGr42" });
  });
  await check("session.v2 DeleteSession with its token, then GetSession → NotFound", async () => {
    need("sessionId", "sessionToken");
    const res = await sessions.deleteSession({ sessionId: s.sessionId, sessionToken: s.sessionToken }, ADMIN);
    assertRecent(res.details?.changeDate, "details.changeDate");
    const err = await expectError(
      sessions.getSession({ sessionId: s.sessionId, sessionToken: s.sessionToken }, ADMIN), Code.NotFound);
    assertZitadelError(err, { id: "QUERY-SFeaa" });
  });
  await check("session.v2 CreateSession username-less: no allowCredentials, no factors", async () => {
    const res = await sessions.createSession({ challenges: webAuthN() }, ADMIN);
    const pk = res.challenges?.webAuthN?.publicKeyCredentialRequestOptions?.publicKey;
    assertEq(pk?.rpId, RP_ID, "publicKey.rpId");
    assert(!pk.allowCredentials || pk.allowCredentials.length === 0, `allowCredentials ${fmt(pk.allowCredentials)}`);
    const got = await sessions.getSession({ sessionId: res.sessionId, sessionToken: res.sessionToken }, ADMIN);
    assertEq(got.session?.factors, undefined, "session.factors");
    await sessions.deleteSession({ sessionId: res.sessionId, sessionToken: res.sessionToken }, ADMIN);
  });

  // 13. a sign-in with a real passkey ---------------------------------------------------------
  const key = new SoftPasskey();
  await check("user.v2 RegisterPasskey + VerifyPasskeyRegistration (software passkey, ES256)", async () => {
    need("v2UserId");
    const link = await u2.createPasskeyRegistrationLink({ userId: s.v2UserId, medium: { case: "returnCode", value: {} } }, ADMIN);
    const started = await u2.registerPasskey({
      userId: s.v2UserId, code: { id: link.code.id, code: link.code.code }, domain: RP_ID,
    }, ADMIN);
    assertNonEmpty(started.passkeyId, "passkeyId");
    const credential = key.register(started.publicKeyCredentialCreationOptions);
    const res = await u2.verifyPasskeyRegistration({
      userId: s.v2UserId, passkeyId: started.passkeyId, publicKeyCredential: credential, passkeyName: "conformance",
    }, ADMIN);
    assertDetails(res.details, s.orgId);
    s.passkey = true;
  });
  const signIn = async (init) => {
    const created = await sessions.createSession({ ...init, challenges: webAuthN() }, ADMIN);
    const options = created.challenges?.webAuthN?.publicKeyCredentialRequestOptions;
    const assertion = key.assert(options);
    const set = await sessions.setSession({
      sessionId: created.sessionId, checks: { webAuthN: { credentialAssertionData: assertion } },
    }, ADMIN);
    assertNonEmpty(set.sessionToken, "SetSession sessionToken");
    const got = await sessions.getSession({ sessionId: created.sessionId, sessionToken: set.sessionToken }, ADMIN);
    return { created, options, assertion, got: got.session, sessionToken: set.sessionToken };
  };
  await check("session.v2 sign-in: CreateSession checks.user, SetSession with the passkey's assertion", async () => {
    need("passkey");
    const { created, options, assertion, got } = await signIn({
      checks: { user: { search: { case: "userId", value: s.v2UserId } } },
    });
    assertEq(options.publicKey.allowCredentials?.map((c) => c.id).join(), b64url(key.credId), "allowCredentials ids");
    assertEq(got?.factors?.user?.id, s.v2UserId, "factors.user.id");
    assertRecent(got.factors.webAuthN?.verifiedAt, "factors.webAuthN.verifiedAt");
    assertEq(got.factors.webAuthN.userVerified, true, "factors.webAuthN.userVerified");
    s.signedIn = { sessionId: created.sessionId, assertion };
  });
  await check("session.v2 SetSession replaying the used assertion → refused (COMMAND-Ioqu5)", async () => {
    need("signedIn");
    const err = await expectError(sessions.setSession({
      sessionId: s.signedIn.sessionId, checks: { webAuthN: { credentialAssertionData: s.signedIn.assertion } },
    }, ADMIN), [Code.InvalidArgument, Code.FailedPrecondition]);
    assertZitadelError(err, { id: "COMMAND-Ioqu5" });
  });
  await check("session.v2 username-less sign-in: the assertion names the user", async () => {
    need("passkey");
    const { options, got } = await signIn({});
    assert(!options.publicKey.allowCredentials?.length, `allowCredentials ${fmt(options.publicKey.allowCredentials)}`);
    assertEq(got?.factors?.user?.id, s.v2UserId, "factors.user.id");
    assertEq(got.factors.user.loginName, `v2-${sfx}`, "factors.user.loginName");
    assertRecent(got.factors.webAuthN?.verifiedAt, "factors.webAuthN.verifiedAt");
  });
  await check("user.v2 ListAuthenticationMethodTypes → PASSKEY", async () => {
    need("passkey");
    const res = await u2.listAuthenticationMethodTypes({ userId: s.v2UserId }, ADMIN);
    assertEq(res.authMethodTypes.join(), "2" /* AUTHENTICATION_METHOD_TYPE_PASSKEY */, "authMethodTypes");
  });

  // 14. OpenID Connect: a login UI finishes authorization requests ----------------------------
  const REDIRECT_URI = "https://app.example/cb";
  await check("setup: CreateProject + CreateApplication (OIDC user agent, PKCE, auth NONE) over Connect JSON", async () => {
    const project = await connectJson("zitadel.project.v2.ProjectService/CreateProject",
      { organizationId: s.orgId, name: `conf-project-${sfx}` });
    assert(/^\d+$/.test(project.projectId ?? ""), `projectId ${fmt(project.projectId)}`);
    const app = await connectJson("zitadel.application.v2.ApplicationService/CreateApplication", {
      projectId: project.projectId,
      name: `conf-app-${sfx}`,
      oidcConfiguration: {
        redirectUris: [REDIRECT_URI],
        responseTypes: ["OIDC_RESPONSE_TYPE_CODE"],
        grantTypes: ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
        applicationType: "OIDC_APP_TYPE_USER_AGENT",
        authMethodType: "OIDC_AUTH_METHOD_TYPE_NONE",
      },
    });
    assertNonEmpty(app.applicationId, "applicationId");
    assertNonEmpty(app.oidcConfiguration?.clientId, "oidcConfiguration.clientId");
    assertEq(app.oidcConfiguration.clientSecret, undefined, "oidcConfiguration.clientSecret (auth method NONE)");
    s.clientId = app.oidcConfiguration.clientId;
  });
  // A new authorization request of the app, as a browser starts it: 302 to the hosted login page.
  const authorize = async (extra = {}) => {
    need("clientId");
    const verifier = b64url(randomBytes(32));
    const params = {
      client_id: s.clientId, redirect_uri: REDIRECT_URI, response_type: "code", scope: "openid profile",
      state: "s1", nonce: "n1", code_challenge: b64url(sha256(verifier)), code_challenge_method: "S256",
      login_hint: `v2-${sfx}`, ui_locales: "de", ...extra,
    };
    const query = Object.entries(params).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
    const res = await fetch(`${BASE_URL}/oauth/v2/authorize?${query}`,
      { redirect: "manual", signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = await res.text();
    assertEq(res.status, 302, `GET /oauth/v2/authorize status (body ${fmt(body.slice(0, 200))})`);
    const location = res.headers.get("location") ?? "";
    const m = /^(.*)\/ui\/login\?authRequest=(V2_\d+)$/.exec(location);
    assert(m, `Location ${fmt(location)} is not <external url>/ui/login?authRequest=V2_<digits>`);
    assertEq(m[1], ORIGIN, "Location: the external URL");
    return { id: m[2], verifier };
  };
  await check("oauth GET /oauth/v2/authorize (code, PKCE S256) → 302 <external url>/ui/login?authRequest=V2_…", async () => {
    await authorize();
  });

  // The OIDCService checks, once per RPC transport and once over REST.
  const oidcChecks = async (via, api) => {
    const c = (name, fn) => checkVia(via, name, fn);
    const p = "oidc.v2";
    const userCheck = { user: { search: { case: "userId", value: s.v2UserId } } };
    const callback = (authRequestId, callbackKind, token = ADMIN) =>
      api.createCallback({ authRequestId, callbackKind }, token);
    const session = (sessionId, sessionToken) => ({ case: "session", value: { sessionId, sessionToken } });
    // details of a CreateCallback: ZITADEL's auth request aggregate belongs to the instance; passlink
    // answers the app's organization (reported), so only presence is checked here.
    const assertCallbackDetails = (d) => {
      assert(d, "details missing");
      assert(d.sequence > 0n, `details.sequence = ${d.sequence}`);
      assertRecent(d.changeDate, "details.changeDate");
      assertNonEmpty(d.resourceOwner, "details.resourceOwner");
    };

    await c(`${p} GetAuthRequest → id, creationDate, clientId, scope, redirectUri, prompt, uiLocales, loginHint`, async () => {
      const { id } = await authorize();
      const a = (await api.getAuthRequest({ authRequestId: id }, ADMIN)).authRequest;
      assert(a, "authRequest missing");
      assertEq(a.id, id, "authRequest.id");
      assertRecent(a.creationDate, "authRequest.creationDate");
      assertEq(a.clientId, s.clientId, "authRequest.clientId");
      assertEq(a.scope.join(" "), "openid profile", "authRequest.scope");
      assertEq(a.redirectUri, REDIRECT_URI, "authRequest.redirectUri");
      assertEq(a.prompt.length, 0, "authRequest.prompt.length");
      assertEq(a.uiLocales.join(), "de", "authRequest.uiLocales");
      assertEq(a.loginHint, `v2-${sfx}`, "authRequest.loginHint");
      assertEq(a.maxAge, undefined, "authRequest.maxAge");
      assertEq(a.hintUserId, undefined, "authRequest.hintUserId");
    });
    await c(`${p} GetAuthRequest prompt=login max_age=600 → prompt [PROMPT_LOGIN], maxAge 600s`, async () => {
      const { id } = await authorize({ prompt: "login", max_age: "600", ui_locales: "de en" });
      const a = (await api.getAuthRequest({ authRequestId: id }, ADMIN)).authRequest;
      assertEq(a?.prompt.join(), String(Prompt.LOGIN), "authRequest.prompt");
      assertEq(a.maxAge?.seconds, 600n, "authRequest.maxAge.seconds");
      assertEq(a.maxAge.nanos, 0, "authRequest.maxAge.nanos");
      assertEq(a.uiLocales.join(), "de,en", "authRequest.uiLocales");
    });
    await c(`${p} GetAuthRequest unknown id → NotFound (QUERY-Thee9)`, async () => {
      const err = await expectError(api.getAuthRequest({ authRequestId: "V2_1" }, ADMIN), Code.NotFound);
      assertZitadelError(err, { id: "QUERY-Thee9" });
    });
    await c(`${p} GetAuthRequest caller without any role → PermissionDenied`, async () => {
      need("noRolesPat");
      const { id } = await authorize();
      const err = await expectError(api.getAuthRequest({ authRequestId: id }, s.noRolesPat), Code.PermissionDenied);
      assertZitadelError(err);
    });

    let linked;
    await c(`${p} CreateCallback with the passkey session → details, callbackUrl ${REDIRECT_URI}?code=…&state=s1`, async () => {
      need("passkey");
      const ar = await authorize();
      const { created, sessionToken } = await signIn({ checks: userCheck });
      const res = await callback(ar.id, session(created.sessionId, sessionToken));
      assertCallbackDetails(res.details);
      const url = new URL(res.callbackUrl);
      assertEq(`${url.origin}${url.pathname}`, REDIRECT_URI, "callbackUrl without its query");
      assertEq([...url.searchParams.keys()].join(), "code,state", "callbackUrl parameters");
      const code = url.searchParams.get("code");
      assert(/^V2_\d+/.test(code), `code ${fmt(code)} does not start with V2_<digits>`);
      assertEq(url.searchParams.get("state"), "s1", "state");
      linked = { ...ar, code, sessionId: created.sessionId, sessionToken };
    });
    await c(`${p} CreateCallback a second time → FailedPrecondition (COMMAND-Sx208nt)`, async () => {
      assert(linked, "prerequisite: the first CreateCallback failed");
      const err = await expectError(
        callback(linked.id, session(linked.sessionId, linked.sessionToken)), Code.FailedPrecondition);
      assertZitadelError(err, { id: "COMMAND-Sx208nt" });
    });
    const exchange = async (code, verifier) => {
      const res = await fetch(`${BASE_URL}/oauth/v2/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, client_id: s.clientId, code_verifier: verifier,
        }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const text = await res.text();
      try {
        return { status: res.status, body: JSON.parse(text) };
      } catch {
        throw new Error(`POST /oauth/v2/token → ${res.status}, not JSON: ${text.slice(0, 300)}`);
      }
    };
    await c("oauth POST /oauth/v2/token authorization_code + code_verifier → id_token (signed, nonce, aud, sub)", async () => {
      assert(linked, "prerequisite: CreateCallback with the passkey session failed");
      const { status, body } = await exchange(linked.code, linked.verifier);
      assertEq(status, 200, `status (${fmt(body)})`);
      assertEq(body.token_type, "Bearer", "token_type");
      assertNonEmpty(body.access_token, "access_token");
      assert(body.expires_in > 0, `expires_in ${fmt(body.expires_in)}`);
      const claims = await verifiedJwtClaims(body.id_token);
      assertEq(claims.nonce, "n1", "id_token nonce");
      assertEq(claims.iss, ORIGIN, "id_token iss");
      assertEq(claims.sub, s.v2UserId, "id_token sub");
      const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      assert(aud.includes(s.clientId), `id_token aud ${fmt(claims.aud)} does not name the client ${s.clientId}`);
      assert(claims.exp > Date.now() / 1000, `id_token exp ${claims.exp} is past`);
    });
    await c("oauth POST /oauth/v2/token the same code again → 400 invalid_grant", async () => {
      assert(linked, "prerequisite: CreateCallback with the passkey session failed");
      const { status, body } = await exchange(linked.code, linked.verifier);
      assertEq(status, 400, `status (${fmt(body)})`);
      assertEq(body.error, "invalid_grant", "error");
    });
    await c(`${p} CreateCallback error ACCESS_DENIED → callbackUrl error=access_denied&error_description=x&state=s1`, async () => {
      const { id } = await authorize();
      const res = await callback(id, { case: "error", value: { error: ErrorReason.ACCESS_DENIED, errorDescription: "x" } });
      assertCallbackDetails(res.details);
      assertEq(res.callbackUrl, `${REDIRECT_URI}?error=access_denied&error_description=x&state=s1`, "callbackUrl");
    });
    await c(`${p} CreateCallback session without a passkey check → FailedPrecondition (OIDC-pk3yR)`, async () => {
      need("v2UserId");
      const { id } = await authorize();
      const created = await sessions.createSession({ checks: userCheck }, ADMIN);
      const err = await expectError(callback(id, session(created.sessionId, created.sessionToken)), Code.FailedPrecondition);
      assertZitadelError(err, { id: "OIDC-pk3yR" });
    });
    await c(`${p} CreateCallback with a wrong session token → PermissionDenied (COMMAND-sGr42)`, async () => {
      need("v2UserId");
      const { id } = await authorize();
      const created = await sessions.createSession({ checks: userCheck }, ADMIN);
      const err = await expectError(callback(id, session(created.sessionId, `wrong-${sfx}`)), Code.PermissionDenied);
      assertZitadelError(err, { id: "COMMAND-sGr42" });
    });
    await c(`${p} CreateCallback unknown id → NotFound`, async () => {
      need("v2UserId");
      const created = await sessions.createSession({ checks: userCheck }, ADMIN);
      const err = await expectError(callback("V2_1", session(created.sessionId, created.sessionToken)), Code.NotFound);
      assertZitadelError(err);
    });
    await c(`${p} CreateCallback caller without any role → PermissionDenied, the request stays open`, async () => {
      need("noRolesPat");
      const { id } = await authorize();
      const denied = { case: "error", value: { error: ErrorReason.ACCESS_DENIED } };
      const err = await expectError(callback(id, denied, s.noRolesPat), Code.PermissionDenied);
      assertZitadelError(err);
      const res = await callback(id, denied);
      assertEq(res.callbackUrl, `${REDIRECT_URI}?error=access_denied&state=s1`, "callbackUrl of the admin's CreateCallback");
    });
  };
  await oidcChecks(tname, strictClient(OIDCService, transport));
  if (tname === selected[0]) await oidcChecks("rest", restOidcClient());
}

// ---------------------------------------------------------------------------------------------
// main

for (const tname of selected) {
  try {
    await scenario(tname, TRANSPORTS[tname]());
  } catch (e) {
    if (e instanceof Abort) {
      report(false, tname, "scenario", `aborted after failed setup step "${e.message}"`);
    } else {
      report(false, tname, "scenario", `crashed: ${e?.stack ?? e}`);
    }
  }
}

console.log(`${passed} passed, ${failed} failed`);
// HTTP/2 sessions may keep the event loop alive; exit explicitly.
process.exit(failed > 0 ? 1 : 0);
