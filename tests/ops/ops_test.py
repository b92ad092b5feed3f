"""gRPC's own Python clients (grpcio, grpcio-health-checking, grpcio-reflection; pinned in
requirements.txt) against a running passlink, with no proto file of passlink's on this side:

  reflection  list the services (v1alpha, the client library's version, and v1 over the same
              messages); resolve zitadel.user.v2.UserService/AddHumanUser by symbol through
              ProtoReflectionDescriptorDatabase; build its request message class from the reflected
              descriptors and call it with the admin token, then GetUserByID the same way; the same
              call without a token is UNAUTHENTICATED; unknown symbols and files are NOT_FOUND.
  health      Check "" and a served service (SERVING); an unknown service (NOT_FOUND); Watch ""
              receives SERVING, Watch of an unknown service receives SERVICE_UNKNOWN.

Run (see scripts/test):
  python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
  PASSLINK_ADDR=127.0.0.1:8080 PASSLINK_TOKEN="$(cat ../../passlink-data/admin.pat)" \
    .venv/bin/python ops_test.py
"""

import os
import secrets
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ADDR = os.environ["PASSLINK_ADDR"]
TOKEN = os.environ["PASSLINK_TOKEN"]
failures = []


def ok(what):
    print(f"PASS ops {what}", flush=True)


def fail(what, detail):
    print(f"FAIL ops {what}: {detail}", flush=True)
    failures.append(what)


def check(what, cond, detail=""):
    if cond:
        ok(what)
    else:
        fail(what, detail)


channel = grpc.insecure_channel(ADDR)

# ---------------------------------------------------------------------------------------------
# reflection

EXPECTED = {
    "zitadel.user.v2.UserService",
    "zitadel.user.v2beta.UserService",
    "zitadel.session.v2.SessionService",
    "zitadel.org.v2.OrganizationService",
    "passlink.enrollment.v1.EnrollmentService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}


def reflect(version, requests):
    """One ServerReflectionInfo stream of `version` (v1 has v1alpha's messages and numbers)."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(call(iter(requests), timeout=10))


db = ProtoReflectionDescriptorDatabase(channel)
services = set(db.get_services())
check(
    "reflection v1alpha (ProtoReflectionDescriptorDatabase): list_services names the API, health and reflection",
    EXPECTED <= services,
    sorted(services),
)

for version in ("v1", "v1alpha"):
    responses = reflect(
        version,
        [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="zitadel.session.v2.SessionService"),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="zitadel.session.v2.SessionService"),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
            reflection_pb2.ServerReflectionRequest(file_by_filename="no/such/file.proto"),
            reflection_pb2.ServerReflectionRequest(file_by_filename="grpc/health/v1/health.proto"),
        ],
    )
    names = {s.name for s in responses[0].list_services_response.service}
    check(f"reflection {version}: list_services", EXPECTED <= names, sorted(names))
    first = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in responses[1].file_descriptor_response.file_descriptor_proto]
    check(
        f"reflection {version}: file_containing_symbol sends the file first, then its imports",
        len(first) > 1
        and first[0].name == "zitadel/session/v2/session_service.proto"
        and any(f.name == "google/protobuf/timestamp.proto" for f in first),
        [f.name for f in first],
    )
    again = responses[2].file_descriptor_response.file_descriptor_proto
    check(
        f"reflection {version}: asked again on the stream, only the file itself (imports already sent)",
        len(again) == 1 and descriptor_pb2.FileDescriptorProto.FromString(again[0]).name == first[0].name,
        len(again),
    )
    for i, what in ((3, "unknown symbol"), (4, "unknown file")):
        err = responses[i].error_response
        check(
            f"reflection {version}: {what} → error_response NOT_FOUND",
            responses[i].WhichOneof("message_response") == "error_response"
            and err.error_code == grpc.StatusCode.NOT_FOUND.value[0],
            responses[i],
        )
    health_file = descriptor_pb2.FileDescriptorProto.FromString(responses[5].file_descriptor_response.file_descriptor_proto[0])
    check(
        f"reflection {version}: file_by_filename",
        health_file.package == "grpc.health.v1" and [s.name for s in health_file.service] == ["Health"],
        health_file.name,
    )

# The descriptors of a method, resolved by symbol, its messages built from them, and a call.
pool = descriptor_pool.DescriptorPool(db)
try:
    service = pool.FindServiceByName("zitadel.user.v2.UserService")
    add = service.methods_by_name["AddHumanUser"]
    get = pool.FindMethodByName("zitadel.user.v2.UserService.GetUserByID")
    ok("reflection: AddHumanUser and GetUserByID resolved by symbol, with their message types")
except KeyError as e:
    fail("reflection: resolve methods by symbol", repr(e))
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)


def unary(method):
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return request_class, call


AddRequest, add_human_user = unary(add)
GetRequest, get_user_by_id = unary(get)
rand = secrets.token_hex(4)
request = json_format.ParseDict(
    {
        "username": f"ops-{rand}",
        "profile": {"givenName": "Grace", "familyName": "Hopper"},
        "email": {"email": f"grace-{rand}@example.com", "isVerified": True},
    },
    AddRequest(),
)
auth = (("authorization", f"Bearer {TOKEN}"),)
try:
    created = add_human_user(request, metadata=auth, timeout=10)
    user_id = created.user_id
    check("dynamic call: AddHumanUser (request built from reflected descriptors) returns a user id", user_id != "", created)
    got = get_user_by_id(json_format.ParseDict({"userId": user_id}, GetRequest()), metadata=auth, timeout=10)
    got_json = json_format.MessageToDict(got)
    check(
        "dynamic call: GetUserByID finds the user by its username",
        got_json.get("user", {}).get("username") == f"ops-{rand}",
        got_json,
    )
except grpc.RpcError as e:
    fail("dynamic call: AddHumanUser / GetUserByID", f"{e.code()} {e.details()}")

try:
    add_human_user(request, timeout=10)
    fail("dynamic call without a token", "succeeded")
except grpc.RpcError as e:
    check("dynamic call without a token → UNAUTHENTICATED", e.code() == grpc.StatusCode.UNAUTHENTICATED, e.code())

# ---------------------------------------------------------------------------------------------
# health

health = health_pb2_grpc.HealthStub(channel)
SERVING = health_pb2.HealthCheckResponse.SERVING
for name in ("", "zitadel.user.v2.UserService", "grpc.health.v1.Health"):
    status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
    check(f"health Check {name!r} → SERVING", status == SERVING, status)
try:
    health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    fail("health Check of an unknown service", "answered")
except grpc.RpcError as e:
    check("health Check of an unknown service → NOT_FOUND", e.code() == grpc.StatusCode.NOT_FOUND, e.code())

for name, expected in (("", SERVING), ("zitadel.session.v2.SessionService", SERVING),
                       ("no.such.Service", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)):
    stream = health.Watch(health_pb2.HealthCheckRequest(service=name), timeout=10)
    first = next(stream)
    stream.cancel()
    check(
        f"health Watch {name!r} → {health_pb2.HealthCheckResponse.ServingStatus.Name(expected)} at once",
        first.status == expected,
        first.status,
    )

channel.close()
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all ops checks passed")
