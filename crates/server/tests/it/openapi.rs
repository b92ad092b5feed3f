//! `GET /openapi.json`: served without a token, one operation per REST route the server routes,
//! with protojson schemas (the schemathesis suite in tests/openapi checks the answers against it).

use serde_json::Value;

use crate::harness;

#[tokio::test]
async fn the_openapi_document_describes_every_rest_route() {
    let s = harness::start("openapi").await;
    let r = reqwest::get(format!("{}/openapi.json", s.base)).await.unwrap();
    assert_eq!(r.status(), 200, "no token needed");
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // Every binding the server routes is documented with its RPC and success status, and every
    // documented operation is routed (an undocumented binding answers 404 on its path).
    let mut documented = 0;
    for &(verb, path, rpc, success) in passlink_wire::REST_ROUTES {
        let op = &doc["paths"][path][verb.to_lowercase()];
        if op.is_null() {
            continue;
        }
        documented += 1;
        assert_eq!(op["x-rpc"], rpc, "{verb} {path}");
        assert!(op["responses"][success.to_string()]["content"]["application/json"]["schema"].is_object());
        assert_eq!(op["responses"]["4XX"]["$ref"], "#/components/responses/Error");
        // `body: "*"`: everything but the path parameters is in the body; else in the query.
        let has_body = op["requestBody"].is_object();
        assert!(!(has_body && verb == "GET"), "{verb} {path}");
        for p in op["parameters"].as_array().into_iter().flatten() {
            match p["in"].as_str().unwrap() {
                "path" => assert!(path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())), "{path}"),
                _ => assert!(!has_body, "{verb} {path}: query parameters besides a body: {p}"),
            }
        }
    }
    let operations: usize =
        doc["paths"].as_object().unwrap().values().map(|o| o.as_object().unwrap().len()).sum();
    assert_eq!(operations, documented, "only REST_ROUTES are documented");
    assert!(documented >= 30, "{documented}");
    let link = &doc["paths"]["/v2/users/{user_id}/passkeys/registration_link"]["post"];
    assert_eq!(link["x-rpc"], "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink");
    // The request body leaves out what the path binds.
    let body = &link["requestBody"]["content"]["application/json"]["schema"]["properties"];
    assert!(body.get("userId").is_none() && body.get("returnCode").is_some(), "{body}");

    // protojson: lowerCamel names, uint64 as strings, timestamps as date-times, enums by name,
    // nothing required in a response.
    let schemas = &doc["components"]["schemas"];
    let details = &schemas["zitadel.object.v2.Details"];
    assert_eq!(details["properties"]["sequence"]["type"], "string");
    assert_eq!(
        details["properties"]["changeDate"],
        serde_json::json!({"type": "string", "format": "date-time"})
    );
    assert!(details["properties"]["resourceOwner"].is_object());
    let state = &schemas["zitadel.user.v2.UserState"];
    assert_eq!(state["type"], "string");
    assert!(state["enum"].as_array().unwrap().iter().any(|v| v == "USER_STATE_ACTIVE"));
    assert!(schemas.as_object().unwrap().values().all(|s| s.get("required").is_none()
        || s["description"].as_str().is_some_and(|d| d.starts_with("grpc-gateway's error body"))));
    let status = &schemas["google.rpc.Status"];
    assert_eq!(status["properties"]["details"]["items"]["properties"]["@type"]["type"], "string");

    // A GET binding's query parameters, as grpc-gateway reads them (dotted for nested messages).
    let idps = &doc["paths"]["/v2/settings/login/idps"]["get"]["parameters"];
    let names: Vec<&str> = idps.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"ctx.orgId") && names.contains(&"creationAllowed"), "{names:?}");
    s.server.shutdown().await.unwrap();
}

/// Requests axum turns down before an RPC (found by schemathesis-style input) answer in the
/// document's error shape, google.rpc.Status JSON, not text.
#[tokio::test]
async fn rejected_rest_requests_answer_status_json() {
    let s = harness::start("openapi-rejections").await;
    let c = reqwest::Client::new();
    let status_json = |r: reqwest::Response| async move {
        assert_eq!(r.headers()["content-type"], "application/json");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    };
    // A path parameter that is not UTF-8.
    let r = c.get(format!("{}/v2/users/%FF", s.base)).bearer_auth(&s.admin_token).send().await.unwrap();
    let (status, body) = status_json(r).await;
    assert_eq!((status, &body["code"]), (400, &Value::from(3)), "{body}");
    assert!(body["message"].as_str().unwrap().contains("UTF-8"), "{body}");
    // A body over the size limit.
    let r = c
        .post(format!("{}/v2/organizations", s.base))
        .bearer_auth(&s.admin_token)
        .header("content-type", "application/json")
        .body(vec![b' '; 3 << 20])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(r).await;
    assert_eq!((status, &body["code"]), (413, &Value::from(8)), "{body}");
    s.server.shutdown().await.unwrap();
}
