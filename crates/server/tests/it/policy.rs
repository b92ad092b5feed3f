//! The authenticator policy (`--authenticator-policy`): AAGUID allow-/deny-lists per instance
//! and organization refuse a registration with `PASSKEY-Pol01` on every protocol and leave the
//! code usable; "attestation": "verified" asks for direct attestation and accepts only a
//! `packed` attestation chaining to a trusted root (`--attestation-roots`: a test CA).

use std::path::PathBuf;

use passlink_server::Server;
use passlink_testkit::attestation::AttestationCa;
use passlink_testkit::authenticator::Passkey;
use serde_json::{Value, json};

use crate::clients::{self, Api, Failure, Rest};
use crate::harness::{self, TestServer};
use crate::passkey::{REGISTER, VERIFY, returned_code, start, verify};
use crate::setup::{human, ok};

const YUBIKEY: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
const CHROMIUM: &str = "01020304-0506-0708-0102-030405060708";
const OTHER: &str = "11223344-5566-7788-99aa-bbccddeeff00";

fn bytes(aaguid: &str) -> [u8; 16] {
    let hex: String = aaguid.chars().filter(|c| *c != '-').collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// A server with `policy` as its policy file and `roots` (PEM) as `--attestation-roots`.
async fn start_with(tag: &str, policy: &str, roots: Option<&str>) -> Result<TestServer, String> {
    let dir: PathBuf = harness::temp_dir(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let policy_file = dir.join("policy.json");
    std::fs::write(&policy_file, policy).unwrap();
    let roots_file = roots.map(|pem| {
        let f = dir.join("roots.pem");
        std::fs::write(&f, pem).unwrap();
        f
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.authenticator_policy = Some(policy_file);
    cfg.attestation_roots = roots_file;
    let server = Server::start(cfg, listener).await?;
    let admin_token = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    Ok(TestServer { base: format!("http://{addr}"), server, admin_token, dir })
}

async fn org(s: &TestServer, name: &str) -> String {
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    ok(rest
        .call(
            "zitadel.org.v2.OrganizationService/AddOrganization",
            json!({"name": name}),
            Some(&s.admin_token),
            None,
        )
        .await)["organizationId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Start a registration with the code and answer it with `key`: the options and the outcome.
async fn attempt(
    api: &dyn Api,
    s: &TestServer,
    user: &str,
    code: (&str, &str),
    key: &mut Passkey,
) -> (Value, clients::Outcome) {
    let started = ok(start(api, REGISTER, user, code, None).await);
    let options = started["publicKeyCredentialCreationOptions"].clone();
    let cred = key.register(&options, &s.server.external_url).unwrap();
    let passkey = started["passkeyId"].as_str().unwrap();
    (options, verify(api, VERIFY, user, passkey, cred, None).await)
}

fn key(aaguid: Option<&str>) -> Passkey {
    let mut k = Passkey::new().unwrap();
    k.aaguid = aaguid.map(bytes).unwrap_or_default();
    k
}

fn refused(r: clients::Outcome, id: &str, api: &dyn Api, what: &str) -> Failure {
    let f = r.err().unwrap_or_else(|| panic!("[{}] {what}: expected {id}", api.name()));
    assert_eq!(f.code, 9, "[{}] {what}: FailedPrecondition: {f:?}", api.name());
    assert!(f.message.ends_with(&format!("({id})")), "[{}] {what}: {f:?}", api.name());
    assert!(f.details.iter().any(|(i, _)| i == id), "[{}] {what}: {f:?}", api.name());
    if let Some(status) = f.http {
        assert_eq!(status, 400, "[{}] {what}", api.name());
    }
    f
}

#[tokio::test]
async fn denied_authenticators_are_refused_on_every_protocol_and_the_code_stays_usable() {
    let policy =
        format!(r#"{{"deny": ["{CHROMIUM}"], "organizations": {{"ORG_B": {{"allow": ["{YUBIKEY}"]}}}}}}"#);
    // The organization id is known only once the server runs: write the policy for a first
    // server, learn the ids, and restart on the same data directory with the real id.
    let first = start_with("policy", &policy, None).await.unwrap();
    let org_a = org(&first, "policy-a").await;
    let org_b = org(&first, "policy-b").await;
    let dir = first.dir.clone();
    first.server.shutdown().await.unwrap();
    std::fs::write(dir.join("policy.json"), policy.replace("ORG_B", &org_b)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = harness::config(addr, &dir);
    cfg.authenticator_policy = Some(dir.join("policy.json"));
    let server = Server::start(cfg, listener).await.unwrap();
    let admin = std::fs::read_to_string(dir.join("admin.pat")).unwrap().trim().to_string();
    let s = TestServer { base: format!("http://{addr}"), server, admin_token: admin.clone(), dir };

    for api in clients::all(&s.base) {
        let api = &*api;
        // Organization A: the instance's deny-list.
        let user = human(api, &admin, &org_a, &format!("pa-{}", api.name())).await;
        let (cid, code) = returned_code(api, &admin, &user).await;
        let (options, r) = attempt(api, &s, &user, (&cid, &code), &mut key(Some(CHROMIUM))).await;
        assert_eq!(options["publicKey"]["attestation"], "none", "[{}] no attestation asked", api.name());
        let f = refused(r, "PASSKEY-Pol01", api, "denied AAGUID");
        assert!(f.message.contains("not allowed by the organization's policy"), "[{}] {f:?}", api.name());
        // The code was not consumed: another authenticator registers with it.
        let (_, r) = attempt(api, &s, &user, (&cid, &code), &mut key(Some(YUBIKEY))).await;
        ok(r);
        let f = start(api, REGISTER, &user, (&cid, &code), None).await.expect_err("the code is consumed now");
        assert_eq!(f.message, "Code is invalid (COMMAND-Eeb2a)", "[{}]", api.name());
        // An authenticator that reports no AAGUID passes a deny-list.
        let (cid, code) = returned_code(api, &admin, &user).await;
        ok(attempt(api, &s, &user, (&cid, &code), &mut key(None)).await.1);

        // Organization B overrides: an allow-list of the YubiKey only.
        let user = human(api, &admin, &org_b, &format!("pb-{}", api.name())).await;
        let (cid, code) = returned_code(api, &admin, &user).await;
        for (aaguid, what) in
            [(Some(CHROMIUM), "not listed"), (Some(OTHER), "not listed"), (None, "no AAGUID")]
        {
            refused(
                attempt(api, &s, &user, (&cid, &code), &mut key(aaguid)).await.1,
                "PASSKEY-Pol01",
                api,
                what,
            );
        }
        ok(attempt(api, &s, &user, (&cid, &code), &mut key(Some(YUBIKEY))).await.1);
    }
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn verified_attestation_accepts_only_attestations_chaining_to_a_trusted_root() {
    let ca = AttestationCa::new("passlink test vendor");
    let policy = format!(r#"{{"allow": ["{YUBIKEY}"], "attestation": "verified"}}"#);
    let s = start_with("attest", &policy, Some(&ca.pem)).await.unwrap();
    let o = org(&s, "attest").await;
    let admin = s.admin_token.clone();
    let apis = clients::all(&s.base);
    for api in [&apis[0], &apis[3]] {
        let api = &**api;
        let user = human(api, &admin, &o, &format!("at-{}", api.name())).await;
        let (cid, code) = returned_code(api, &admin, &user).await;
        // Attestation "none" is refused, as is a self-reported AAGUID: the code stays usable.
        let (options, r) = attempt(api, &s, &user, (&cid, &code), &mut key(Some(YUBIKEY))).await;
        assert_eq!(options["publicKey"]["attestation"], "direct", "[{}]", api.name());
        let f = refused(r, "PASSKEY-Att01", api, "attestation none");
        assert!(f.message.contains("attestation could not be verified"), "{f:?}");
        // An attestation by another (unknown) vendor's CA.
        let mut stranger = key(Some(YUBIKEY));
        stranger.attestation = Some(AttestationCa::new("unknown vendor").attestation(bytes(YUBIKEY)));
        refused(
            attempt(api, &s, &user, (&cid, &code), &mut stranger).await.1,
            "PASSKEY-Att01",
            api,
            "unknown root",
        );
        // Attested by the trusted CA, but not on the allow-list.
        let mut other = key(Some(OTHER));
        other.attestation = Some(ca.attestation(bytes(OTHER)));
        refused(
            attempt(api, &s, &user, (&cid, &code), &mut other).await.1,
            "PASSKEY-Pol01",
            api,
            "attested, not listed",
        );
        // Attested by the trusted CA and listed.
        let mut attested = key(Some(YUBIKEY));
        attested.attestation = Some(ca.attestation(bytes(YUBIKEY)));
        ok(attempt(api, &s, &user, (&cid, &code), &mut attested).await.1);
        let listed = ok(api
            .call(
                "passlink.enrollment.v1.EnrollmentService/ListPasskeys",
                json!({"userId": user}),
                Some(&admin),
                None,
            )
            .await);
        assert_eq!(listed["result"][0]["aaguid"], YUBIKEY, "[{}] {listed}", api.name());
    }
    s.server.shutdown().await.unwrap();

    // The shipped roots alone do not trust the test CA.
    let s = start_with("attest-shipped", &policy, None).await.unwrap();
    let o = org(&s, "attest-shipped").await;
    let rest = Rest { base: s.base.clone(), http: reqwest::Client::new() };
    let user = human(&rest, &s.admin_token, &o, "shipped").await;
    let (cid, code) = returned_code(&rest, &s.admin_token, &user).await;
    let mut attested = key(Some(YUBIKEY));
    attested.attestation = Some(ca.attestation(bytes(YUBIKEY)));
    let r = attempt(&rest, &s, &user, (&cid, &code), &mut attested).await.1;
    refused(r, "PASSKEY-Att01", &rest, "test CA not among the shipped roots");
    s.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_policy_or_roots_file_stops_the_start_naming_file_and_entry() {
    let err = start_with("policy-bad", r#"{"organizations": {"7": {"allow": ["nope"]}}}"#, None).await.err();
    let err = err.expect("a bad policy is refused");
    assert!(err.contains("--authenticator-policy") && err.contains("policy.json"), "{err}");
    assert!(err.contains(r#"organizations.7.allow[0]: "nope" is not an AAGUID"#), "{err}");
    let err = start_with("roots-bad", "{}", Some("not a certificate")).await.err();
    let err = err.expect("a bad roots file is refused");
    assert!(err.contains("--attestation-roots") && err.contains("roots.pem"), "{err}");
}
