"""ZITADEL's official Python SDK (zitadel-client, pinned in requirements.txt), unchanged, against a
running passlink in all three of its auth modes:

  pat   Zitadel.with_access_token(host, token)                      static bearer token
  cc    Zitadel.with_client_credentials(host, client_id, secret)    discovery + client_credentials
                                                                    (client_secret_basic)
  jwt   Zitadel.with_private_key(host, key_file)                    discovery + jwt-bearer assertion
                                                                    signed with AddKey's key file

Each mode creates a passkey registration link (user v2, returnCode) for a human user with a machine
user that is ORG_OWNER of the user's organization, and checks code.id, a 12-character code.code and
details.resourceOwner. A login client (machine user with IAM_LOGIN_CLIENT, PAT) then drives the
Session API through the SDK: CreateSession (checks.user, metadata), SetSession (lifetime, metadata →
a new token), GetSession with the new token reads both back, the replaced token is refused,
ListSessions finds it by user id, DeleteSession ends it. Also: a wrong client secret and a foreign private key make the SDK raise;
the JWT and client-credentials modes reuse their access token for a second call; the access token
is a JWT with a kid.

Run (see scripts/test):
  python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
  PASSLINK_URL=http://localhost:8080 PASSLINK_TOKEN="$(cat ../../passlink-data/admin.pat)" \
    .venv/bin/python sdk_test.py

PASSLINK_URL must equal passlink's --external-url (the JWT assertion's audience is the host the
SDK is given). PASSLINK_TOKEN is a personal access token of an IAM_OWNER, used for the setup only.
Output: "PASS <check>" / "FAIL <check>: <reason>" lines and "N passed, M failed"; exit 1 on failure.
On a failure of an OAuth mode, every request the SDK made to the token endpoint is printed with
the server's status and body.
"""

import base64
import json
import os
import secrets
import sys
import tempfile
import traceback
import urllib.error
import urllib.parse
import urllib.request
import warnings

import authlib.deprecate  # noqa: E402,F401  (installs an "always" filter for its warnings; ours goes first)

warnings.filterwarnings("ignore", message=".*authlib.jose module is deprecated.*")

from zitadel_client import ApiError, Zitadel, ZitadelError  # noqa: E402
from zitadel_client.models import (  # noqa: E402
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceDeleteSessionRequest,
    SessionServiceGetSessionRequest,
    SessionServiceListSessionsRequest,
    SessionServiceSearchQuery,
    SessionServiceSetSessionRequest,
    SessionServiceUserIDQuery,
    UserServiceCreatePasskeyRegistrationLinkRequest,
)

BASE = os.environ.get("PASSLINK_URL", "").rstrip("/")
ADMIN = os.environ.get("PASSLINK_TOKEN", "")
if not BASE or not ADMIN:
    print("PASSLINK_URL and PASSLINK_TOKEN must be set", file=sys.stderr)
    sys.exit(2)

passed = 0
failed = 0


def ok(name):
    global passed
    passed += 1
    print(f"PASS py {name}", flush=True)


def fail(name, reason):
    global failed
    failed += 1
    print(f"FAIL py {name}: {reason}", flush=True)


# ---------------------------------------------------------------------------------------------
# plain HTTP for the setup (admin token) and diagnostics


def http(method, path, body=None, token=ADMIN, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, parsed


def connect(method, body):
    """Connect JSON unary call with the admin token; raises on a non-200 answer."""
    status, parsed = http("POST", "/" + method, body)
    if status != 200:
        raise RuntimeError(f"setup {method} -> {status} {json.dumps(parsed)}")
    return parsed


def b64decode_any(s):
    s = s.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    """(header, claims) of a compact JWS, or None if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return json.loads(b64decode_any(parts[0])), json.loads(b64decode_any(parts[1]))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# observing what the SDK sends to the token endpoint (read-only: a requests response hook on the
# SDK's own Authlib session; the SDK's behaviour is not changed)


class TokenLog:
    def __init__(self):
        self.entries = []

    def attach(self, client):
        auth = client.configuration.authenticator
        session = getattr(auth, "oauth_session", None)
        if session is not None:
            session.hooks.setdefault("response", []).append(self._hook)

    def _hook(self, resp, *args, **kwargs):
        req = resp.request
        body = req.body.decode() if isinstance(req.body, bytes) else (req.body or "")
        self.entries.append(
            {
                "request": f"{req.method} {req.url}",
                "authorization": req.headers.get("Authorization", "")[:6] + "…" if req.headers.get("Authorization") else "",
                "content_type": req.headers.get("Content-Type", ""),
                "body": body,
                "status": resp.status_code,
                "response": resp.text[:600],
            }
        )
        return resp

    def dump(self):
        if not self.entries:
            print("    (no token request was made)")
        for e in self.entries:
            print(f"    SDK -> {e['request']}  content-type: {e['content_type']}  authorization: {e['authorization']}")
            print(f"           body: {e['body']}")
            assertion = dict(p.split("=", 1) for p in e["body"].split("&") if "=" in p).get("assertion")
            if assertion:
                decoded = jwt_parts(urllib.parse.unquote(assertion))
                if decoded:
                    print(f"           assertion header: {json.dumps(decoded[0])} claims: {json.dumps(decoded[1])}")
            print(f"    passlink <- {e['status']} {e['response']}")


def describe(exc):
    if isinstance(exc, ApiError):
        return f"ApiError {exc.code}: {json.dumps(exc.response_body) if not isinstance(exc.response_body, str) else exc.response_body}"
    cause = exc.__cause__
    return f"{type(exc).__name__}: {exc}" + (f" (caused by {type(cause).__name__}: {cause})" if cause else "")


# ---------------------------------------------------------------------------------------------
# setup

rand = secrets.token_hex(4)
try:
    org = connect("zitadel.org.v2.OrganizationService/AddOrganization", {"name": f"sdk-py-{rand}"})["organizationId"]
    status, created = http(
        "POST",
        "/v2/users/human",
        {
            "organization": {"orgId": org},
            "profile": {"givenName": "Ada", "familyName": "Lovelace"},
            "email": {"email": f"ada-{rand}@example.com", "isVerified": True},
        },
    )
    if status not in (200, 201):
        raise RuntimeError(f"setup POST /v2/users/human -> {status} {json.dumps(created)}")
    human = created["userId"]
    username = f"sdk-py-{rand}"
    machine = connect(
        "zitadel.user.v2.UserService/CreateUser",
        {"organizationId": org, "username": username, "machine": {"name": "sdk"}},
    )["id"]
    connect(
        "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
        {"userId": machine, "resource": {"organizationId": org}, "roles": ["ORG_OWNER"]},
    )
    pat = connect(
        "zitadel.user.v2.UserService/AddPersonalAccessToken",
        {"userId": machine, "expirationDate": "2099-01-01T00:00:00Z"},
    )["token"]
except Exception as e:  # noqa: BLE001
    fail("setup (org, human user, machine user ORG_OWNER, PAT)", describe(e))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1)
ok("setup: org, human user, machine user with ORG_OWNER, personal access token")

client_secret = None
try:
    client_secret = connect("zitadel.user.v2.UserService/AddSecret", {"userId": machine})["clientSecret"]
    if not client_secret:
        raise RuntimeError("AddSecret returned no clientSecret")
    ok("setup: AddSecret returns a clientSecret")
except Exception as e:  # noqa: BLE001
    fail("setup: AddSecret", describe(e))

tmpdir = tempfile.mkdtemp(prefix="passlink-sdk-py-")
key_file = None
key_json = None
try:
    added = connect(
        "zitadel.user.v2.UserService/AddKey",
        {"userId": machine, "expirationDate": "2099-01-01T00:00:00Z"},
    )
    key_json = json.loads(b64decode_any(added["keyContent"]))
    problems = []
    if key_json.get("type") != "serviceaccount":
        problems.append(f"type={key_json.get('type')!r}")
    if key_json.get("userId") != machine:
        problems.append(f"userId={key_json.get('userId')!r} (machine user is {machine})")
    if not key_json.get("keyId") or key_json.get("keyId") != added.get("keyId"):
        problems.append(f"keyId={key_json.get('keyId')!r} vs response keyId={added.get('keyId')!r}")
    if "PRIVATE KEY-----" not in (key_json.get("key") or ""):
        problems.append("key is not a PEM private key")
    key_file = os.path.join(tmpdir, "key.json")
    with open(key_file, "w") as f:
        f.write(b64decode_any(added["keyContent"]).decode())
    if problems:
        fail("setup: AddKey key file in ZITADEL's format", ", ".join(problems))
    else:
        ok("setup: AddKey returns a ZITADEL key file (type, keyId, key PEM, userId)")
except Exception as e:  # noqa: BLE001
    fail("setup: AddKey", describe(e))

status, disco = http("GET", "/.well-known/openid-configuration", token=None)
if status == 200 and isinstance(disco, dict) and disco.get("token_endpoint"):
    ok(f"discovery: token_endpoint {disco['token_endpoint']}")
else:
    fail("discovery GET /.well-known/openid-configuration", f"{status} {json.dumps(disco)[:400]}")


# ---------------------------------------------------------------------------------------------
# the modes


def create_link(client):
    return client.users.create_passkey_registration_link(
        UserServiceCreatePasskeyRegistrationLinkRequest(user_id=human, return_code={})
    )


def check_link(name, resp):
    problems = []
    code = resp.code
    if code is None or not code.id:
        problems.append("no code.id")
    if code is None or not code.code or len(code.code) != 12:
        problems.append(f"code.code {getattr(code, 'code', None)!r} is not 12 characters")
    if resp.details is None or resp.details.resource_owner != org:
        problems.append(f"details.resourceOwner {getattr(resp.details, 'resource_owner', None)!r} != {org}")
    if problems:
        fail(name, "; ".join(problems) + f" — response {resp.to_json()}")
        return False
    ok(name)
    return True


def run_mode(mode, build, log=None):
    try:
        client = build()
    except Exception as e:  # noqa: BLE001
        fail(f"{mode}: construct the SDK client", describe(e))
        return None
    if log is not None:
        log.attach(client)
    try:
        resp = create_link(client)
    except Exception as e:  # noqa: BLE001
        fail(f"{mode}: CreatePasskeyRegistrationLink (returnCode)", describe(e))
        if log is not None:
            log.dump()
        return None
    if not check_link(f"{mode}: CreatePasskeyRegistrationLink (returnCode) → code.id, 12-char code, resourceOwner", resp):
        if log is not None:
            log.dump()
    return client


# 1. personal access token
run_mode("pat", lambda: Zitadel.with_access_token(BASE, pat))

# 2. client credentials (client id = the machine user's username)
if client_secret:
    cc_log = TokenLog()
    cc = run_mode("client_credentials", lambda: Zitadel.with_client_credentials(BASE, username, client_secret), cc_log)
    if cc is not None and cc_log.entries:
        try:
            check_link("client_credentials: second call reuses the access token", create_link(cc))
            if len(cc_log.entries) != 1:
                fail("client_credentials: one token request for two calls", f"{len(cc_log.entries)} token requests")
            else:
                ok("client_credentials: one token request for two calls")
        except Exception as e:  # noqa: BLE001
            fail("client_credentials: second call reuses the access token", describe(e))
        tok = cc.configuration.authenticator.token
        parts = jwt_parts(tok.access_token) if tok else None
        if parts and parts[0].get("kid") and parts[0].get("alg") == "RS256":
            ok(f"client_credentials: access token is an RS256 JWT with kid {parts[0]['kid']}")
        else:
            fail("client_credentials: access token is a JWT with kid", f"header {parts[0] if parts else None}")

    # wrong secret: the SDK must raise, and the token endpoint must say invalid_client
    bad_log = TokenLog()
    try:
        bad = Zitadel.with_client_credentials(BASE, username, client_secret + "x")
        bad_log.attach(bad)
        try:
            create_link(bad)
            fail("client_credentials: wrong secret makes the SDK raise", "the call succeeded")
        except ZitadelError as e:
            if isinstance(e, ApiError):
                fail("client_credentials: wrong secret makes the SDK raise at the token step", describe(e))
            else:
                ok("client_credentials: wrong secret makes the SDK raise (ZitadelError: Failed to refresh token)")
                entry = bad_log.entries[-1] if bad_log.entries else None
                try:
                    err = json.loads(entry["response"]).get("error") if entry else None
                except ValueError:
                    err = None
                if entry and entry["status"] == 401 and err == "invalid_client":
                    ok("client_credentials: wrong secret → 401 invalid_client")
                else:
                    fail("client_credentials: wrong secret → 401 invalid_client", "")
                    bad_log.dump()
    except Exception as e:  # noqa: BLE001
        fail("client_credentials: wrong secret makes the SDK raise", describe(e))

    # unknown client id
    try:
        bad = Zitadel.with_client_credentials(BASE, f"nobody-{rand}", client_secret)
        create_link(bad)
        fail("client_credentials: unknown client id makes the SDK raise", "the call succeeded")
    except ZitadelError as e:
        if isinstance(e, ApiError):
            fail("client_credentials: unknown client id makes the SDK raise at the token step", describe(e))
        else:
            ok("client_credentials: unknown client id makes the SDK raise")
else:
    fail("client_credentials: not run", "no client secret (AddSecret failed)")

# 3. private-key JWT (the key file from AddKey)
if key_file:
    jwt_log = TokenLog()
    jc = run_mode("jwt_profile", lambda: Zitadel.with_private_key(BASE, key_file), jwt_log)
    if jc is not None and jwt_log.entries:
        try:
            check_link("jwt_profile: second call reuses the access token", create_link(jc))
            if len(jwt_log.entries) != 1:
                fail("jwt_profile: one token request for two calls", f"{len(jwt_log.entries)} token requests")
            else:
                ok("jwt_profile: one token request for two calls")
        except Exception as e:  # noqa: BLE001
            fail("jwt_profile: second call reuses the access token", describe(e))
            jwt_log.dump()

    # Two SDK clients on one key file (e.g. two workers starting together): the SDK's assertion has
    # no jti and second-resolution iat/exp, so both send the SAME assertion when they ask in the same
    # second. Both must get a token (a replay check may key on jti only).
    try:
        twins = [Zitadel.with_private_key(BASE, key_file) for _ in range(2)]
        for twin in twins:
            twin.configuration.authenticator.get_auth_token()
        for i, twin in enumerate(twins):
            check_link(f"jwt_profile: two clients on one key file at once, client {i + 1}", create_link(twin))
    except Exception as e:  # noqa: BLE001
        fail("jwt_profile: two clients on one key file at once (identical jti-less assertions)", describe(e))

    # a key the server does not know, under the real keyId and user: the SDK must raise
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = foreign.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        forged = dict(key_json, key=pem)
        forged_file = os.path.join(tmpdir, "forged.json")
        with open(forged_file, "w") as f:
            json.dump(forged, f)
        bad = Zitadel.with_private_key(BASE, forged_file)
        create_link(bad)
        fail("jwt_profile: an assertion signed with a foreign key makes the SDK raise", "the call succeeded")
    except ZitadelError as e:
        if isinstance(e, ApiError):
            fail("jwt_profile: foreign key makes the SDK raise at the token step", describe(e))
        else:
            ok("jwt_profile: an assertion signed with a foreign key makes the SDK raise")
    except Exception as e:  # noqa: BLE001
        fail("jwt_profile: foreign key", describe(e))
else:
    fail("jwt_profile: not run", "no key file (AddKey failed)")

# 4. the Session API, as a login client (IAM_LOGIN_CLIENT) uses it
def b64(s):
    return base64.b64encode(s.encode()).decode()


def sessions():
    login_id = connect(
        "zitadel.user.v2.UserService/CreateUser",
        {"organizationId": org, "username": f"login-{rand}", "machine": {"name": "login client"}},
    )["id"]
    connect(
        "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
        {"userId": login_id, "resource": {"instance": True}, "roles": ["IAM_LOGIN_CLIENT"]},
    )
    login_pat = connect(
        "zitadel.user.v2.UserService/AddPersonalAccessToken",
        {"userId": login_id, "expirationDate": "2099-01-01T00:00:00Z"},
    )["token"]
    api = Zitadel.with_access_token(BASE, login_pat).sessions

    created = api.create_session(
        SessionServiceCreateSessionRequest(
            checks=SessionServiceChecks(user=SessionServiceCheckUser(user_id=human)),
            metadata={"client": b64("sdk-py")},
        )
    )
    if not created.session_id or not created.session_token or created.details is None:
        raise RuntimeError(f"CreateSession answered {created.to_json()}")
    ok("sessions: CreateSession checks.user + metadata → sessionId, sessionToken, details")

    updated = api.set_session(
        SessionServiceSetSessionRequest(session_id=created.session_id, lifetime="3600s", metadata={"step": b64("set")})
    )
    if not updated.session_token or updated.session_token == created.session_token:
        raise RuntimeError(f"SetSession answered no new token: {updated.to_json()}")
    ok("sessions: SetSession lifetime + metadata → a new sessionToken")

    got = api.get_session(
        SessionServiceGetSessionRequest(session_id=created.session_id, session_token=updated.session_token)
    ).session
    problems = []
    user = got.factors.user if got.factors else None
    if got.id != created.session_id:
        problems.append(f"id {got.id!r}")
    if user is None or user.id != human or user.organization_id != org:
        problems.append(f"factors.user {user.to_json() if user else None}")
    if got.expiration_date is None or abs((got.expiration_date - got.change_date).total_seconds() - 3600) > 60:
        problems.append(f"expirationDate {got.expiration_date} vs changeDate {got.change_date}, want about 1 h")
    want_meta = {"client": b64("sdk-py"), "step": b64("set")}
    meta = {k: (base64.b64encode(v).decode() if isinstance(v, bytes) else v) for k, v in (got.metadata or {}).items()}
    if meta != want_meta:
        problems.append(f"metadata {meta} != {want_meta}")
    if problems:
        raise RuntimeError("GetSession: " + "; ".join(problems))
    ok("sessions: GetSession with the new token reads back the user, lifetime and metadata")

    try:
        api.get_session(SessionServiceGetSessionRequest(session_id=created.session_id, session_token=created.session_token))
        fail("sessions: GetSession with the replaced token is refused", "it succeeded")
    except ApiError as e:
        if e.code == 403:
            ok("sessions: GetSession with the replaced token → 403")
        else:
            fail("sessions: GetSession with the replaced token → 403", describe(e))

    listed = api.list_sessions(
        SessionServiceListSessionsRequest(queries=[SessionServiceSearchQuery(user_id_query=SessionServiceUserIDQuery(id=human))])
    )
    ids = [x.id for x in (listed.sessions or [])]
    if ids != [created.session_id]:
        raise RuntimeError(f"ListSessions userIdQuery: ids {ids}, want [{created.session_id}]")
    ok("sessions: ListSessions userIdQuery finds the session")

    api.delete_session(SessionServiceDeleteSessionRequest(session_id=created.session_id, session_token=updated.session_token))
    try:
        api.get_session(SessionServiceGetSessionRequest(session_id=created.session_id, session_token=updated.session_token))
        fail("sessions: DeleteSession ends the session", "GetSession still succeeds")
    except ApiError as e:
        if e.code == 404:
            ok("sessions: DeleteSession ends the session (GetSession → 404)")
        else:
            fail("sessions: DeleteSession ends the session (GetSession → 404)", describe(e))


try:
    sessions()
except Exception as e:  # noqa: BLE001
    fail("sessions", describe(e))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
