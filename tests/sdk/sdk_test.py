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
is a JWT with a kid. Then projects and OIDC applications through the SDK's ProjectServiceApi /
ApplicationServiceApi (project v2, application v2), as the ORG_OWNER machine user (PAT):
CreateProject, GetProject, ListProjects (name and id filters), CreateApplication (a web app with
BASIC auth → a client secret; a user-agent app with NONE → none), GetApplication (redirect URIs,
client id, application / auth method type as the SDK parses them: ZITADEL's JSON leaves out enum
values 0, OIDC_APP_TYPE_WEB and OIDC_AUTH_METHOD_TYPE_BASIC), ListApplications by project id,
GenerateClientSecret (the new secret authenticates at /oauth/v2/introspect, the old one no longer;
the NONE app has no secret to generate), UpdateApplication (redirect URIs), Deactivate /
ReactivateApplication, DeleteApplication, DeleteProject (then Get → 404), and a caller without
roles gets 403 from CreateProject.

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
    ApplicationServiceApplicationSearchFilter,
    ApplicationServiceApplicationState,
    ApplicationServiceCreateApplicationRequest,
    ApplicationServiceCreateOIDCApplicationRequest,
    ApplicationServiceDeactivateApplicationRequest,
    ApplicationServiceDeleteApplicationRequest,
    ApplicationServiceGenerateClientSecretRequest,
    ApplicationServiceGetApplicationRequest,
    ApplicationServiceListApplicationsRequest,
    ApplicationServiceOIDCApplicationType,
    ApplicationServiceOIDCAuthMethodType,
    ApplicationServiceOIDCGrantType,
    ApplicationServiceOIDCResponseType,
    ApplicationServiceProjectIDFilter,
    ApplicationServiceReactivateApplicationRequest,
    ApplicationServiceUpdateApplicationRequest,
    ApplicationServiceUpdateOIDCApplicationConfigurationRequest,
    ProjectServiceCreateProjectRequest,
    ProjectServiceDeleteProjectRequest,
    ProjectServiceGetProjectRequest,
    ProjectServiceInIDsFilter,
    ProjectServiceListProjectsRequest,
    ProjectServiceProjectNameFilter,
    ProjectServiceProjectSearchFilter,
    ProjectServiceProjectState,
    ProjectServiceTextFilterMethod,
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


# 5. projects and OIDC applications (project v2, application v2), as the ORG_OWNER machine user
def expect_api_error(name, status, call):
    """`call` must raise ApiError with HTTP `status`."""
    try:
        res = call()
    except ApiError as e:
        if e.code == status:
            ok(name)
        else:
            fail(name, describe(e))
        return
    fail(name, f"it succeeded: {res.to_json() if hasattr(res, 'to_json') else res}")


def introspect_status(client_id, secret):
    """HTTP status and body of an introspection (RFC 7662), authenticated as the app, of a token shaped
    like passlink's OIDC access tokens (`V2_<grant id>.<random>`) that is not live: {"active": false}.
    (passlink checks an app's credentials only for tokens of that shape; for any other token it
    looks for a machine user of that name and answers 401.)"""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    req = urllib.request.Request(
        BASE + "/oauth/v2/introspect",
        data=urllib.parse.urlencode({"token": "V2_1.not-a-live-token"}).encode(),
        method="POST",
        headers={"authorization": "Basic " + basic, "content-type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")[:200]


def apps():
    zitadel = Zitadel.with_access_token(BASE, pat)
    projects, applications = zitadel.projects, zitadel.applications
    redirect = "https://app.example/cb"

    created = projects.create_project(ProjectServiceCreateProjectRequest(organization_id=org, name=f"sdk-project-{rand}"))
    if not created.project_id or created.creation_date is None:
        raise RuntimeError(f"CreateProject answered {created.to_json()}")
    project_id = created.project_id
    ok("projects: CreateProject → projectId, creationDate")

    try:
        got = projects.get_project(ProjectServiceGetProjectRequest(project_id=project_id)).project
        problems = []
        if got is None:
            raise RuntimeError("no project")
        if got.project_id != project_id or got.organization_id != org or got.name != f"sdk-project-{rand}":
            problems.append(f"projectId/organizationId/name {got.project_id!r} {got.organization_id!r} {got.name!r}")
        if got.state != ProjectServiceProjectState.PROJECT_STATE_ACTIVE:
            problems.append(f"state {got.state!r}")
        if got.creation_date is None or got.change_date is None:
            problems.append(f"creationDate {got.creation_date} changeDate {got.change_date}")
        if problems:
            fail("projects: GetProject", "; ".join(problems) + f" — {got.to_json()}")
        else:
            ok("projects: GetProject → projectId, organizationId, name, PROJECT_STATE_ACTIVE, dates")
    except Exception as e:  # noqa: BLE001
        fail("projects: GetProject", describe(e))

    try:
        by_name = projects.list_projects(
            ProjectServiceListProjectsRequest(
                filters=[
                    ProjectServiceProjectSearchFilter(
                        project_name_filter=ProjectServiceProjectNameFilter(
                            project_name=f"sdk-project-{rand}", method=ProjectServiceTextFilterMethod.TEXT_FILTER_METHOD_EQUALS
                        )
                    )
                ]
            )
        )
        by_id = projects.list_projects(
            ProjectServiceListProjectsRequest(
                filters=[ProjectServiceProjectSearchFilter(in_project_ids_filter=ProjectServiceInIDsFilter(ids=[project_id]))]
            )
        )
        names = [x.project_id for x in (by_name.projects or [])]
        ids = [x.project_id for x in (by_id.projects or [])]
        total = by_name.pagination.total_result if by_name.pagination else None
        if names != [project_id] or ids != [project_id] or str(total) != "1":
            raise RuntimeError(f"projectNameFilter → {names} (totalResult {total!r}), inProjectIdsFilter → {ids}; want [{project_id}]")
        ok("projects: ListProjects projectNameFilter / inProjectIdsFilter → the project, totalResult 1")
    except Exception as e:  # noqa: BLE001
        fail("projects: ListProjects", describe(e))

    def oidc_app(name, app_type, auth):
        return applications.create_application(
            ApplicationServiceCreateApplicationRequest(
                project_id=project_id,
                name=name,
                oidc_configuration=ApplicationServiceCreateOIDCApplicationRequest(
                    redirect_uris=[redirect],
                    response_types=[ApplicationServiceOIDCResponseType.OIDC_RESPONSE_TYPE_CODE],
                    grant_types=[ApplicationServiceOIDCGrantType.OIDC_GRANT_TYPE_AUTHORIZATION_CODE],
                    application_type=app_type,
                    auth_method_type=auth,
                ),
            )
        )

    web = oidc_app(
        f"sdk-web-{rand}",
        ApplicationServiceOIDCApplicationType.OIDC_APP_TYPE_WEB,
        ApplicationServiceOIDCAuthMethodType.OIDC_AUTH_METHOD_TYPE_BASIC,
    )
    cfg = web.oidc_configuration
    if not web.application_id or cfg is None or not cfg.client_id or not cfg.client_secret:
        raise RuntimeError(f"CreateApplication (web, BASIC) answered {web.to_json()}")
    ok("apps: CreateApplication OIDC web app, BASIC → applicationId, clientId, clientSecret")
    web_id, web_client, web_secret = web.application_id, cfg.client_id, cfg.client_secret

    spa = oidc_app(
        f"sdk-spa-{rand}",
        ApplicationServiceOIDCApplicationType.OIDC_APP_TYPE_USER_AGENT,
        ApplicationServiceOIDCAuthMethodType.OIDC_AUTH_METHOD_TYPE_NONE,
    )
    if not spa.application_id or spa.oidc_configuration is None or not spa.oidc_configuration.client_id:
        raise RuntimeError(f"CreateApplication (user agent, NONE) answered {spa.to_json()}")
    if spa.oidc_configuration.client_secret:
        fail("apps: CreateApplication OIDC user-agent app, NONE → no clientSecret", f"clientSecret returned: {spa.to_json()}")
    else:
        ok("apps: CreateApplication OIDC user-agent app, NONE → clientId, no clientSecret")
    spa_id = spa.application_id

    def get_app(app_id):
        return applications.get_application(ApplicationServiceGetApplicationRequest(application_id=app_id)).application

    # ZITADEL's JSON leaves out enum values 0 (OIDC_APP_TYPE_WEB, OIDC_AUTH_METHOD_TYPE_BASIC): the SDK
    # then has None; the named value is accepted too.
    def check_app(name, app_id, client_id, app_type, auth, uris, zero_types=()):
        try:
            a = get_app(app_id)
            c = a.oidc_configuration if a else None
            problems = []
            if a is None or c is None:
                raise RuntimeError(f"no application / oidcConfiguration: {a.to_json() if a else None}")
            if a.application_id != app_id or a.project_id != project_id or not a.name:
                problems.append(f"applicationId/projectId/name {a.application_id!r} {a.project_id!r} {a.name!r}")
            if a.state != ApplicationServiceApplicationState.APPLICATION_STATE_ACTIVE:
                problems.append(f"state {a.state!r}")
            if a.creation_date is None or a.change_date is None:
                problems.append(f"creationDate {a.creation_date} changeDate {a.change_date}")
            if c.client_id != client_id:
                problems.append(f"clientId {c.client_id!r} != {client_id!r}")
            if c.redirect_uris != uris:
                problems.append(f"redirectUris {c.redirect_uris!r} != {uris!r}")
            if c.application_type != app_type and not (c.application_type is None and app_type in zero_types):
                problems.append(f"applicationType {c.application_type!r}, want {app_type!r}")
            if c.auth_method_type != auth and not (c.auth_method_type is None and auth in zero_types):
                problems.append(f"authMethodType {c.auth_method_type!r}, want {auth!r}")
            if c.response_types != [ApplicationServiceOIDCResponseType.OIDC_RESPONSE_TYPE_CODE]:
                problems.append(f"responseTypes {c.response_types!r}")
            if c.grant_types != [ApplicationServiceOIDCGrantType.OIDC_GRANT_TYPE_AUTHORIZATION_CODE]:
                problems.append(f"grantTypes {c.grant_types!r}")
            if problems:
                fail(name, "; ".join(problems) + f" — {a.to_json()}")
            else:
                ok(name)
        except Exception as e:  # noqa: BLE001
            fail(name, describe(e))

    web_zero = (
        ApplicationServiceOIDCApplicationType.OIDC_APP_TYPE_WEB,
        ApplicationServiceOIDCAuthMethodType.OIDC_AUTH_METHOD_TYPE_BASIC,
    )
    check_app(
        "apps: GetApplication web app → redirectUris, clientId, WEB / BASIC (None when left out as 0), ACTIVE",
        web_id, web_client,
        ApplicationServiceOIDCApplicationType.OIDC_APP_TYPE_WEB,
        ApplicationServiceOIDCAuthMethodType.OIDC_AUTH_METHOD_TYPE_BASIC,
        [redirect], web_zero,
    )
    check_app(
        "apps: GetApplication user-agent app → OIDC_APP_TYPE_USER_AGENT, OIDC_AUTH_METHOD_TYPE_NONE",
        spa_id, spa.oidc_configuration.client_id,
        ApplicationServiceOIDCApplicationType.OIDC_APP_TYPE_USER_AGENT,
        ApplicationServiceOIDCAuthMethodType.OIDC_AUTH_METHOD_TYPE_NONE,
        [redirect],
    )

    try:
        listed = applications.list_applications(
            ApplicationServiceListApplicationsRequest(
                filters=[ApplicationServiceApplicationSearchFilter(project_id_filter=ApplicationServiceProjectIDFilter(project_id=project_id))]
            )
        )
        ids = sorted(x.application_id for x in (listed.applications or []))
        total = listed.pagination.total_result if listed.pagination else None
        if ids != sorted([web_id, spa_id]) or str(total) != "2":
            raise RuntimeError(f"ids {ids} (totalResult {total!r}), want {sorted([web_id, spa_id])}")
        ok("apps: ListApplications projectIdFilter → both apps, totalResult 2")
    except Exception as e:  # noqa: BLE001
        fail("apps: ListApplications projectIdFilter", describe(e))

    try:
        before = introspect_status(web_client, web_secret)
        new = applications.generate_client_secret(
            ApplicationServiceGenerateClientSecretRequest(application_id=web_id, project_id=project_id)
        )
        if not new.client_secret or new.client_secret == web_secret or new.creation_date is None:
            raise RuntimeError(f"GenerateClientSecret answered {new.to_json()}")
        old_now, new_now = introspect_status(web_client, web_secret), introspect_status(web_client, new.client_secret)
        if before != (200, {"active": False}) or old_now[0] != 401 or new_now != (200, {"active": False}):
            raise RuntimeError(
                f"/oauth/v2/introspect as the app: old secret before {before}, old secret after {old_now}, new secret {new_now}"
                " (want 200, 401, 200)"
            )
        ok("apps: GenerateClientSecret → a new secret; it authenticates at /oauth/v2/introspect, the old one → 401")
    except Exception as e:  # noqa: BLE001
        fail("apps: GenerateClientSecret", describe(e))

    expect_api_error(
        "apps: GenerateClientSecret for the NONE app → 400 (failed_precondition)",
        400,
        lambda: applications.generate_client_secret(
            ApplicationServiceGenerateClientSecretRequest(application_id=spa_id, project_id=project_id)
        ),
    )

    try:
        uris = ["https://app.example/cb2", "https://app.example/cb3"]
        updated = applications.update_application(
            ApplicationServiceUpdateApplicationRequest(
                application_id=web_id,
                project_id=project_id,
                oidc_configuration=ApplicationServiceUpdateOIDCApplicationConfigurationRequest(redirect_uris=uris),
            )
        )
        if updated.change_date is None:
            raise RuntimeError(f"UpdateApplication answered {updated.to_json()}")
        ok("apps: UpdateApplication redirectUris → changeDate")
        check_app(
            "apps: GetApplication after UpdateApplication → the new redirectUris, the rest unchanged",
            web_id, web_client,
            ApplicationServiceOIDCApplicationType.OIDC_APP_TYPE_WEB,
            ApplicationServiceOIDCAuthMethodType.OIDC_AUTH_METHOD_TYPE_BASIC,
            uris, web_zero,
        )
    except Exception as e:  # noqa: BLE001
        fail("apps: UpdateApplication", describe(e))

    try:
        d = applications.deactivate_application(
            ApplicationServiceDeactivateApplicationRequest(application_id=spa_id, project_id=project_id)
        )
        state = get_app(spa_id).state
        if d.deactivation_date is None or state != ApplicationServiceApplicationState.APPLICATION_STATE_INACTIVE:
            raise RuntimeError(f"deactivationDate {d.deactivation_date}, state afterwards {state!r}")
        ok("apps: DeactivateApplication → deactivationDate, APPLICATION_STATE_INACTIVE")
        r = applications.reactivate_application(
            ApplicationServiceReactivateApplicationRequest(application_id=spa_id, project_id=project_id)
        )
        state = get_app(spa_id).state
        if r.reactivation_date is None or state != ApplicationServiceApplicationState.APPLICATION_STATE_ACTIVE:
            raise RuntimeError(f"reactivationDate {r.reactivation_date}, state afterwards {state!r}")
        ok("apps: ReactivateApplication → reactivationDate, APPLICATION_STATE_ACTIVE")
    except Exception as e:  # noqa: BLE001
        fail("apps: DeactivateApplication / ReactivateApplication", describe(e))

    try:
        deleted = applications.delete_application(
            ApplicationServiceDeleteApplicationRequest(application_id=spa_id, project_id=project_id)
        )
        if deleted.deletion_date is None:
            raise RuntimeError(f"DeleteApplication answered {deleted.to_json()}")
        ok("apps: DeleteApplication → deletionDate")
        expect_api_error("apps: GetApplication of the deleted app → 404", 404, lambda: get_app(spa_id))
    except Exception as e:  # noqa: BLE001
        fail("apps: DeleteApplication", describe(e))

    try:
        deleted = projects.delete_project(ProjectServiceDeleteProjectRequest(project_id=project_id))
        if deleted.deletion_date is None:
            raise RuntimeError(f"DeleteProject answered {deleted.to_json()}")
        ok("projects: DeleteProject → deletionDate")
        expect_api_error(
            "projects: GetProject of the deleted project → 404",
            404,
            lambda: projects.get_project(ProjectServiceGetProjectRequest(project_id=project_id)),
        )
        expect_api_error("apps: GetApplication of an app of the deleted project → 404", 404, lambda: get_app(web_id))
    except Exception as e:  # noqa: BLE001
        fail("projects: DeleteProject", describe(e))

    nobody = connect(
        "zitadel.user.v2.UserService/CreateUser",
        {"organizationId": org, "username": f"noroles-{rand}", "machine": {"name": "no roles"}},
    )["id"]
    nobody_pat = connect(
        "zitadel.user.v2.UserService/AddPersonalAccessToken",
        {"userId": nobody, "expirationDate": "2099-01-01T00:00:00Z"},
    )["token"]
    expect_api_error(
        "projects: CreateProject by a user without roles → 403",
        403,
        lambda: Zitadel.with_access_token(BASE, nobody_pat).projects.create_project(
            ProjectServiceCreateProjectRequest(organization_id=org, name=f"sdk-denied-{rand}")
        ),
    )


try:
    apps()
except Exception as e:  # noqa: BLE001
    fail("apps", describe(e))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
