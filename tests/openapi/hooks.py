"""schemathesis hooks of the openapi suite (loaded with SCHEMATHESIS_HOOKS=hooks).

`no_server_error`: schemathesis's `not_a_server_error`, except for a 501 carrying
google.rpc.Status code 12 (Unimplemented): passlink's deliberate answer to a request for
something it does not do (CreateAdministrator on a project), grpc-gateway's status for it.

`unprivileged_gets_no_data`: for the run with a token that holds no role, a successful answer
must not carry data: no user, session, organization, passkey or link of anyone. Only the
operations in PUBLIC may answer 2xx (settings any caller may read, as in ZITADEL); an empty
list and the caller's own user (OPENAPI_SELF, its user id: a user may read itself) are no data.

`no_cross_org_reads`: for the run with the token of another organization's owner
(OPENAPI_OWN_ORG, its organization), a successful answer must not name any other organization:
every `resourceOwner`, `organizationId` and `orgId` in it is the caller's own organization
(the instance-wide settings in PUBLIC excepted). A write into another organization would show
there too.
"""

import os

import schemathesis

# Operations any authenticated caller may use (instance-wide settings; its own sessions list).
PUBLIC = {
    "zitadel.settings.v2.SettingsService/GetBrandingSettings",
    "zitadel.settings.v2.SettingsService/GetLoginSettings",
    "zitadel.settings.v2.SettingsService/GetActiveIdentityProviders",
    "zitadel.settings.v2.SettingsService/GetSecuritySettings",
    "zitadel.settings.v2.SettingsService/GetHostedLoginTranslation",
}

# List responses whose empty `result` means nothing was disclosed.
LISTS = {"result", "sessions", "passkeys"}


def own(value):
    return isinstance(value, dict) and value.get("userId", value.get("id")) == os.environ.get("OPENAPI_SELF")


def disclosed(body):
    """What a response body tells beyond its `details`, empty lists and the caller's own user."""
    rest = {}
    for k, v in body.items():
        if k == "details" or own(v):
            continue
        if k in LISTS and isinstance(v, list):
            v = [item for item in v if not own(item)]
            if not v:
                continue
        rest[k] = v
    return rest


@schemathesis.check
def no_server_error(ctx, response, case):
    if response.status_code < 500:
        return None
    if response.status_code == 501:
        try:
            if response.json().get("code") == 12:
                return None
        except ValueError:
            pass
    raise AssertionError(f"server error {response.status_code}: {response.text[:300]}")


@schemathesis.check
def unprivileged_gets_no_data(ctx, response, case):
    if os.environ.get("OPENAPI_UNPRIVILEGED") != "1" or not 200 <= response.status_code < 300:
        return None
    rpc = case.operation.definition.raw.get("x-rpc", "")
    if rpc in PUBLIC or case.method.upper() != case.operation.method.upper():
        return None  # another method on the path: a CORS preflight answers OPTIONS
    if not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and not disclosed(body):
        return None
    raise AssertionError(f"{rpc}: a caller without roles got {response.status_code} with data: {response.text[:300]}")


ORG_KEYS = {"resourceOwner", "organizationId", "orgId"}


def foreign_orgs(value, own_org):
    """Every organization id in `value` (at ORG_KEYS) that is not `own_org`."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ORG_KEYS and isinstance(v, str) and v and v != own_org:
                found.append(v)
            else:
                found.extend(foreign_orgs(v, own_org))
    elif isinstance(value, list):
        for v in value:
            found.extend(foreign_orgs(v, own_org))
    return found


@schemathesis.check
def no_cross_org_reads(ctx, response, case):
    own_org = os.environ.get("OPENAPI_OWN_ORG")
    if not own_org or not 200 <= response.status_code < 300 or not response.content:
        return None
    rpc = case.operation.definition.raw.get("x-rpc", "")
    if rpc in PUBLIC or case.method.upper() != case.operation.method.upper():
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    foreign = foreign_orgs(body, own_org)
    if foreign:
        raise AssertionError(f"{rpc}: another organization's owner got data of {foreign[:3]}: {response.text[:300]}")
