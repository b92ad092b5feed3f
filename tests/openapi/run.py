"""The served OpenAPI document checked with schemathesis against a running passlink.

PASSLINK_URL and PASSLINK_TOKEN (an IAM_OWNER's token) name the server. Steps:
1. GET /openapi.json answers without a token, with every REST route served.
2. schemathesis with the admin token, every operation but DeactivateUser and DeleteUser: no 5xx
   (hooks.py: but 501 Unimplemented), every response conforms to the document (status code
   documented, content type, schema).
3. a machine user without any role (created here over Connect JSON with the admin token, after
   step 2 so that schemathesis could not grant it roles): schemathesis with its token, every
   operation, no 5xx and no 2xx with data (hooks.py).
4. the owner of another organization (created here like the user of step 3, with ORG_OWNER on
   its own organization): schemathesis with its token, every operation but DeactivateUser and
   DeleteUser, the checks of step 2 and no answer naming another organization (hooks.py).
5. DeactivateUser and DeleteUser with the admin token, last: schemathesis reuses ids from
   earlier answers, and deactivates or deletes the admin itself.
Examples per operation: OPENAPI_EXAMPLES (default 25). Prints PASS lines; schemathesis's own
report only when it fails (or with OPENAPI_VERBOSE=1).
"""

import json
import os
import subprocess
import sys
import tempfile
import urllib.request

URL = os.environ["PASSLINK_URL"].rstrip("/")
TOKEN = os.environ["PASSLINK_TOKEN"]
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.environ.get("OPENAPI_EXAMPLES", "25")
CHECKS = "no_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
DESTRUCTIVE = r"\.(DeactivateUser|DeleteUser)(_[0-9]+)?$"


def call(path, body, token=TOKEN):
    req = urllib.request.Request(
        URL + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def schemathesis(token, checks, label, unprivileged=False, select=()):
    env = dict(os.environ, SCHEMATHESIS_HOOKS="hooks", PYTHONPATH=HERE)
    env["OPENAPI_UNPRIVILEGED"] = "1" if unprivileged else "0"
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "run",
        f"{URL}/openapi.json",
        "--checks", checks,
        "--max-examples", EXAMPLES,
        "--phases", "examples,coverage,fuzzing",
        "--seed", os.environ.get("OPENAPI_SEED", "14"),
        "--workers", "1",  # Python 3.11 parses lambdas with ast, not safely from two threads
        "--no-color",
        "--header", f"Authorization: Bearer {token}",
        "--output-sanitize", "true",
        *select,
    ]
    print(f"-- schemathesis ({label}): {' '.join(c for c in cmd if not c.startswith('Authorization'))}", flush=True)
    # A fresh directory each run: schemathesis keeps a cache there (.schemathesis, .hypothesis)
    # and replays earlier failures from it; a run must not depend on the one before.
    with tempfile.TemporaryDirectory(prefix="openapi-") as cwd:
        result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0 or os.environ.get("OPENAPI_VERBOSE") == "1":
        print(result.stdout, result.stderr, flush=True)
    if result.returncode != 0:
        sys.exit(f"FAIL schemathesis ({label}) exited {result.returncode}")
    print(f"PASS schemathesis ({label}): {EXAMPLES} examples per operation, checks {checks}")


def main():
    with urllib.request.urlopen(URL + "/openapi.json") as r:
        doc = json.load(r)
        assert r.headers["Content-Type"] == "application/json", r.headers["Content-Type"]
    operations = [op for ops in doc["paths"].values() for op in ops.values()]
    assert doc["openapi"].startswith("3."), doc["openapi"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert len(operations) >= 30, len(operations)
    print(f"PASS GET /openapi.json without a token: {len(operations)} operations")

    schemathesis(TOKEN, CHECKS, "admin token", select=["--exclude-operation-id-regex", DESTRUCTIVE])

    org = call("/v2/organizations", {"name": "openapi-unprivileged"})["organizationId"]
    user = call("/zitadel.user.v2.UserService/CreateUser",
                {"organizationId": org, "username": "openapi-nobody", "machine": {"name": "nobody"}})["id"]
    pat = call("/zitadel.user.v2.UserService/AddPersonalAccessToken",
               {"userId": user, "expirationDate": "2099-01-01T00:00:00Z"})["token"]
    os.environ["OPENAPI_SELF"] = user
    schemathesis(pat, "no_server_error,unprivileged_gets_no_data", "token without roles", unprivileged=True)

    other = call("/v2/organizations", {"name": "openapi-other"})["organizationId"]
    owner = call("/zitadel.user.v2.UserService/CreateUser",
                 {"organizationId": other, "username": "openapi-owner", "machine": {"name": "owner"}})["id"]
    call("/zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
         {"userId": owner, "resource": {"organizationId": other}, "roles": ["ORG_OWNER"]})
    owner_pat = call("/zitadel.user.v2.UserService/AddPersonalAccessToken",
                     {"userId": owner, "expirationDate": "2099-01-01T00:00:00Z"})["token"]
    os.environ["OPENAPI_OWN_ORG"] = other
    schemathesis(owner_pat, CHECKS + ",no_cross_org_reads", "another organization's owner",
                 select=["--exclude-operation-id-regex", DESTRUCTIVE])
    del os.environ["OPENAPI_OWN_ORG"]

    schemathesis(TOKEN, CHECKS, "admin token, deactivating and deleting users",
                 select=["--include-operation-id-regex", DESTRUCTIVE])


if __name__ == "__main__":
    main()
