//! A software passkey for the bench and the tests: one ES256 key (ring), attestation "none" (or
//! `packed` with an x5c chain from a test CA: [`crate::attestation`]),
//! user verification reported, a signature counter that grows with every assertion, and the user
//! handle kept from the registration (so it is discoverable: an assertion also works
//! username-less).
//!
//! It builds the WebAuthn JSON a browser sends (`PublicKeyCredential` as JSON, base64url fields)
//! directly from the options, so the load generator spends its time on the server and not on its
//! own authenticator (a signature costs tens of microseconds), and tests can set the flags and
//! the counter an authenticator reports.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

use crate::attestation::{PackedAttestation, cbor_bytes, cbor_text};

type Res<T> = Result<T, String>;

/// Authenticator data flags (WebAuthn §6.1).
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
/// Backup eligible, backed up.
pub const BE: u8 = 0x08;
pub const BS: u8 = 0x10;
const AT: u8 = 0x40;

pub struct Passkey {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    cred_id: Vec<u8>,
    user_handle: String,
    counter: u32,
    /// The flags of the next authenticator data (registration adds AT).
    pub flags: u8,
    /// Report no counter (0 every time), as most synced passkeys do.
    pub without_counter: bool,
    /// The AAGUID its registrations report (zeros: none, as before).
    pub aaguid: [u8; 16],
    /// Sign registrations with this `packed` attestation (x5c); `None`: attestation "none".
    pub attestation: Option<PackedAttestation>,
}

impl Passkey {
    /// A fresh key pair and a random 32-byte credential id.
    pub fn new() -> Res<Passkey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| "generating an ES256 key".to_string())?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| "loading the ES256 key".to_string())?;
        let mut cred_id = vec![0u8; 32];
        rng.fill(&mut cred_id).map_err(|_| "drawing a credential id".to_string())?;
        Ok(Passkey {
            key,
            rng,
            cred_id,
            user_handle: String::new(),
            counter: 0,
            flags: UP | UV,
            without_counter: false,
            aaguid: [0; 16],
            attestation: None,
        })
    }

    /// A string in the options (`/publicKey/...`).
    fn option<'a>(options: &'a serde_json::Value, pointer: &str) -> Res<&'a str> {
        options
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("no {pointer} in the options"))
    }

    /// rpIdHash | flags | signCount: the authenticator data every answer starts with.
    fn auth_data(rp_id: &str, flags: u8, counter: u32) -> Vec<u8> {
        let mut data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        data.push(flags);
        data.extend_from_slice(&counter.to_be_bytes());
        data
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        serde_json::json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// `navigator.credentials.create()` answered for `{"publicKey": {...}}` options on `origin`.
    pub fn register(&mut self, options: &serde_json::Value, origin: &str) -> Res<serde_json::Value> {
        let challenge = Self::option(options, "/publicKey/challenge")?;
        let rp_id = Self::option(options, "/publicKey/rp/id")?;
        self.user_handle = Self::option(options, "/publicKey/user/id")?.to_string();
        // The public key is the uncompressed SEC1 point 04 || x || y.
        let point = self.key.public_key().as_ref();
        let (x, y) = (point.get(1..33).ok_or("short point")?, point.get(33..65).ok_or("short point")?);
        // COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend_from_slice(x);
        cose.extend_from_slice(&[0x22, 0x58, 0x20]);
        cose.extend_from_slice(y);
        let mut auth_data = Self::auth_data(rp_id, self.flags | AT, 0);
        auth_data.extend_from_slice(&self.aaguid);
        auth_data.extend_from_slice(
            &u16::try_from(self.cred_id.len()).map_err(|_| "credential id too long")?.to_be_bytes(),
        );
        auth_data.extend_from_slice(&self.cred_id);
        auth_data.extend_from_slice(&cose);
        let client_data = Self::client_data("webauthn.create", challenge, origin);
        // {"fmt": "none", "attStmt": {}, "authData": bytes}, or "packed" with its statement.
        let (fmt, stmt) = match &self.attestation {
            None => ("none", vec![0xa0]),
            Some(a) => ("packed", a.statement(&auth_data, digest(&SHA256, &client_data).as_ref())),
        };
        let mut att = vec![0xa3];
        cbor_text(&mut att, "fmt");
        cbor_text(&mut att, fmt);
        cbor_text(&mut att, "attStmt");
        att.extend_from_slice(&stmt);
        cbor_text(&mut att, "authData");
        cbor_bytes(&mut att, &auth_data);
        let id = B64.encode(&self.cred_id);
        Ok(serde_json::json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "attestationObject": B64.encode(&att),
                "clientDataJSON": B64.encode(&client_data),
            },
        }))
    }

    /// Report `counter` - 1 as the last use: the next assertion carries `counter`.
    pub fn set_next_counter(&mut self, counter: u32) {
        self.counter = counter.saturating_sub(1);
    }

    /// `navigator.credentials.get()` answered for `{"publicKey": {...}}` options on `origin`:
    /// authenticator data for the options' rpId with UP|UV and the next counter, signed with
    /// the client data.
    pub fn assert(&mut self, options: &serde_json::Value, origin: &str) -> Res<serde_json::Value> {
        let challenge = Self::option(options, "/publicKey/challenge")?;
        let rp_id = Self::option(options, "/publicKey/rpId")?;
        let counter = if self.without_counter {
            0
        } else {
            self.counter += 1;
            self.counter
        };
        let auth_data = Self::auth_data(rp_id, self.flags, counter);
        let client_data = Self::client_data("webauthn.get", challenge, origin);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client_data).as_ref());
        let signature = self.key.sign(&self.rng, &signed).map_err(|_| "signing the assertion".to_string())?;
        let id = B64.encode(&self.cred_id);
        Ok(serde_json::json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(&client_data),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": self.user_handle,
            },
        }))
    }
}
