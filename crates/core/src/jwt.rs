//! JSON Web Tokens and RSA keys: the server's RS256 signing keys and JWKS, access tokens and
//! their verification, machine users' key pairs and key files, and JWT-bearer assertions.
//!
//! Time is a parameter: jsonwebtoken checks signatures only; `exp`, `nbf`, `iat` and audiences
//! are checked here against the `now` the caller passes in.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};
use crate::ports::{Entropy, EntropyRng};
use crate::secret::Secret;
use crate::time::Timestamp;

/// The scope that puts the API's audience into an access token (ZITADEL's project "zitadel").
pub const API_AUDIENCE_SCOPE: &str = "urn:zitadel:iam:org:project:id:zitadel:aud";
/// The audience the API requires in access tokens.
pub const API_AUDIENCE: &str = "zitadel";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One RSA signing key of the server. `Debug` shows the key id only.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub created_at: Timestamp,
    private_pem: Secret,
    n: String,
    e: String,
    /// The parsed key for signing with ring (parsed once: parsing per token cost more than
    /// the signature).
    signer: std::sync::Arc<ring::signature::RsaKeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate(entropy: &dyn Entropy, kid: String, now: Timestamp) -> Result<SigningKey> {
        let key = RsaPrivateKey::new(&mut EntropyRng(entropy), 2048).map_err(Error::internal)?;
        let pem = key.to_pkcs1_pem(LineEnding::LF).map_err(Error::internal)?;
        SigningKey::from_pem(kid, now, &pem)
    }

    pub fn from_pem(kid: String, created_at: Timestamp, pem: &str) -> Result<SigningKey> {
        let key = RsaPrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
            .map_err(|e| Error::internal(format!("signing key {kid}: {e}")))?;
        let der = key.to_pkcs1_der().map_err(Error::internal)?;
        let signer = ring::signature::RsaKeyPair::from_der(der.as_bytes())
            .map_err(|e| Error::internal(format!("signing key {kid}: {e}")))?;
        Ok(SigningKey {
            kid,
            created_at,
            private_pem: Secret::new(pem),
            n: b64(&key.n().to_bytes_be()),
            e: b64(&key.e().to_bytes_be()),
            signer: std::sync::Arc::new(signer),
        })
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url): a key id that never collides.
    pub fn thumbprint(&self) -> String {
        use sha2::Digest as _;
        let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, self.e, self.n);
        b64(&sha2::Sha256::digest(canonical.as_bytes()))
    }

    pub fn private_pem(&self) -> &Secret {
        &self.private_pem
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e})
    }
}

/// The server's signing keys: new tokens are signed with the newest; every listed key verifies,
/// so a rotation does not break tokens already issued.
#[derive(Debug, Clone, Default)]
pub struct TokenKeys {
    pub keys: Vec<SigningKey>,
}

/// The claims of a passlink access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
}

fn token_invalid(cause: impl std::fmt::Display) -> Error {
    Error::new(Kind::Unauthenticated, "AUTH-7fs1e", "Errors.Token.Invalid").with_cause(cause)
}

/// Does this bearer token look like a JWT (three dot-separated parts)?
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

impl TokenKeys {
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": self.keys.iter().map(SigningKey::jwk).collect::<Vec<_>>()})
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String> {
        self.sign_claims(claims, "at+jwt")
    }

    /// Sign any claims (an ID token) with the newest key, RS256 (RSASSA-PKCS1-v1_5 with
    /// SHA-256, by ring); `typ` goes into the header.
    pub fn sign_claims<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String> {
        let key = self.keys.last().ok_or_else(|| Error::internal("no signing key"))?;
        let header = serde_json::json!({"typ": typ, "alg": "RS256", "kid": key.kid});
        let payload = serde_json::to_vec(claims).map_err(Error::internal)?;
        let mut out = format!("{}.{}", b64(header.to_string().as_bytes()), b64(&payload));
        let mut signature = vec![0; key.signer.public().modulus_len()];
        // ring's RSA signing uses the generator for blinding only; the signature is deterministic.
        let rng = ring::rand::SystemRandom::new();
        key.signer
            .sign(&ring::signature::RSA_PKCS1_SHA256, &rng, out.as_bytes(), &mut signature)
            .map_err(|e| Error::internal(format!("signing: {e}")))?;
        out.push('.');
        out.push_str(&b64(&signature));
        Ok(out)
    }

    /// The claims of a token one of our keys signed, whatever its lifetime (an `id_token_hint`
    /// may have expired); the caller checks issuer and audience.
    pub fn verified_claims(&self, token: &str) -> Result<serde_json::Value> {
        let header = jsonwebtoken::decode_header(token).map_err(token_invalid)?;
        let kid = header.kid.ok_or_else(|| token_invalid("no kid"))?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or_else(|| token_invalid("unknown kid"))?;
        let dec = DecodingKey::from_rsa_components(&key.n, &key.e).map_err(Error::internal)?;
        Ok(jsonwebtoken::decode::<serde_json::Value>(token, &dec, &signature_only(Algorithm::RS256))
            .map_err(token_invalid)?
            .claims)
    }

    /// Verify signature, issuer and lifetime; the caller checks audience and subject.
    pub fn verify(&self, token: &str, issuer: &str, now: Timestamp) -> Result<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).map_err(token_invalid)?;
        let kid = header.kid.ok_or_else(|| token_invalid("no kid"))?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or_else(|| token_invalid("unknown kid"))?;
        let dec = DecodingKey::from_rsa_components(&key.n, &key.e).map_err(Error::internal)?;
        let claims: AccessClaims = jsonwebtoken::decode(token, &dec, &signature_only(Algorithm::RS256))
            .map_err(token_invalid)?
            .claims;
        let now_s = now.secs_nanos().0;
        if claims.iss != issuer {
            return Err(token_invalid("wrong issuer"));
        }
        if now_s >= claims.exp || now_s + 60 < claims.nbf {
            return Err(token_invalid("expired or not yet valid"));
        }
        Ok(claims)
    }
}

fn signature_only(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims = HashSet::new();
    v
}

/// A machine user's key pair as AddKey creates it: the public key (PEM, kept) and the private
/// key (PEM, returned once in the key file, never stored).
pub fn generate_machine_key(entropy: &dyn Entropy) -> Result<(String, Secret)> {
    let key = RsaPrivateKey::new(&mut EntropyRng(entropy), 2048).map_err(Error::internal)?;
    let private = key.to_pkcs1_pem(LineEnding::LF).map_err(Error::internal)?;
    let public = RsaPublicKey::from(&key).to_public_key_pem(LineEnding::LF).map_err(Error::internal)?;
    Ok((public, Secret::new(private.as_str())))
}

/// A public key given to AddKey (PEM, SPKI or PKCS#1), normalized to SPKI PEM.
pub fn normalize_public_key(bytes: &[u8]) -> Result<String> {
    let invalid = || Error::new(Kind::InvalidArgument, "KEY-pUb1c", "Errors.User.Key.Invalid");
    let text = std::str::from_utf8(bytes).map_err(|_| invalid())?;
    let key = RsaPublicKey::from_public_key_pem(text)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
        .map_err(|e| invalid().with_cause(e))?;
    key.to_public_key_pem(LineEnding::LF).map_err(Error::internal)
}

/// ZITADEL's key file for a machine key.
pub fn key_file(key_id: &str, user_id: &str, private_pem: &Secret, expiration_rfc3339: &str) -> Vec<u8> {
    serde_json::json!({
        "type": "serviceaccount",
        "keyId": key_id,
        "key": private_pem.expose(),
        "expirationDate": expiration_rfc3339,
        "userId": user_id,
    })
    .to_string()
    .into_bytes()
}

/// An application's key file as ZITADEL writes it (CreateApplicationKey's `keyDetails`).
pub fn app_key_file(
    key_id: &str,
    app_id: &str,
    client_id: &str,
    private_pem: &Secret,
    expiration_rfc3339: &str,
) -> Vec<u8> {
    serde_json::json!({
        "type": "application",
        "keyId": key_id,
        "key": private_pem.expose(),
        "expirationDate": expiration_rfc3339,
        "appId": app_id,
        "clientId": client_id,
    })
    .to_string()
    .into_bytes()
}

/// The claims of a JWT-bearer assertion (RFC 7523).
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub aud: serde_json::Value,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub jti: Option<String>,
}

/// The unverified `iss` of a JWT: which issuer's keys must verify it.
pub fn peek_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    jsonwebtoken::dangerous::insecure_decode::<Iss>(token).ok().map(|d| d.claims.iss)
}

/// The unverified `kid` and claims of an assertion: which user and key it claims to come from.
pub fn peek_assertion(assertion: &str) -> Option<(Option<String>, AssertionClaims)> {
    let header = jsonwebtoken::decode_header(assertion).ok()?;
    let claims = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion).ok()?.claims;
    Some((header.kid, claims))
}

/// Verify an assertion's signature with `public_pem`, and its issuer = subject, audience (must
/// contain `issuer`), expiry, not-before, and a lifetime of at most an hour.
pub fn verify_assertion(
    public_pem: &str,
    assertion: &str,
    issuer: &str,
    now: Timestamp,
) -> Result<AssertionClaims, String> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.to_string())?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) {
        return Err(format!("unsupported assertion algorithm {:?}", header.alg));
    }
    let dec = DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(|e| e.to_string())?;
    let claims: AssertionClaims =
        jsonwebtoken::decode(assertion, &dec, &signature_only(header.alg)).map_err(|e| e.to_string())?.claims;
    let now_s = now.secs_nanos().0;
    if claims.iss != claims.sub {
        return Err("iss and sub differ".into());
    }
    let issuer = issuer.trim_end_matches('/');
    let aud_ok = match &claims.aud {
        serde_json::Value::String(a) => a.trim_end_matches('/') == issuer,
        serde_json::Value::Array(v) => {
            v.iter().any(|a| a.as_str().is_some_and(|a| a.trim_end_matches('/') == issuer))
        }
        _ => false,
    };
    if !aud_ok {
        return Err("audience is not this issuer".into());
    }
    if now_s >= claims.exp + 60 {
        return Err("assertion expired".into());
    }
    if claims.nbf.is_some_and(|nbf| now_s + 60 < nbf) {
        return Err("assertion not yet valid".into());
    }
    if claims.exp - claims.iat.unwrap_or(now_s) > 3600 {
        return Err("assertion lifetime over one hour".into());
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SeededEntropy;
    use jsonwebtoken::{EncodingKey, Header};

    const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "http://localhost:8080".into(),
            sub: "u1".into(),
            aud: vec!["c1".into(), API_AUDIENCE.into()],
            exp,
            iat: 1_800_000_000,
            nbf: 1_800_000_000,
            jti: "j1".into(),
            client_id: "c1".into(),
            scope: "openid".into(),
        }
    }

    #[test]
    fn tokens_verify_after_rotation_and_fail_when_tampered_or_expired() {
        let e = SeededEntropy::new(9);
        let old = SigningKey::generate(&e, "k1".into(), NOW).unwrap();
        let mut keys = TokenKeys { keys: vec![old] };
        let t1 = keys.sign(&claims(1_800_003_600)).unwrap();
        keys.keys.push(SigningKey::generate(&e, "k2".into(), NOW).unwrap());
        let t2 = keys.sign(&claims(1_800_003_600)).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&t2).unwrap().kid.as_deref(), Some("k2"));
        assert_eq!(keys.verify(&t1, "http://localhost:8080", NOW).unwrap().sub, "u1");
        assert!(keys.verify(&t2, "http://localhost:8080", NOW).is_ok());
        assert!(keys.verify(&t2, "http://other", NOW).is_err());
        assert!(keys.verify(&t2, "http://localhost:8080", Timestamp::from_unix_secs(1_800_003_600)).is_err());
        let mut tampered = t2.clone();
        tampered.replace_range(t2.len() - 4.., "AAAA");
        assert!(keys.verify(&tampered, "http://localhost:8080", NOW).is_err());
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
        assert!(!format!("{keys:?}").contains("PRIVATE"));
    }

    #[test]
    fn assertions_are_checked() {
        let e = SeededEntropy::new(3);
        let (public, private) = generate_machine_key(&e).unwrap();
        let sign = |c: serde_json::Value| {
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some("key1".into());
            jsonwebtoken::encode(&h, &c, &EncodingKey::from_rsa_pem(private.expose().as_bytes()).unwrap())
                .unwrap()
        };
        let iss = "http://localhost:8080";
        let good = sign(
            serde_json::json!({"iss":"u","sub":"u","aud":[iss],"iat":1_800_000_000,"exp":1_800_000_600}),
        );
        assert!(verify_assertion(&public, &good, iss, NOW).is_ok());
        assert_eq!(peek_assertion(&good).map(|(k, c)| (k, c.sub)), Some((Some("key1".into()), "u".into())));
        let wrong_aud = sign(
            serde_json::json!({"iss":"u","sub":"u","aud":"http://x","iat":1_800_000_000,"exp":1_800_000_600}),
        );
        assert!(verify_assertion(&public, &wrong_aud, iss, NOW).is_err());
        let expired =
            sign(serde_json::json!({"iss":"u","sub":"u","aud":iss,"iat":1_799_990_000,"exp":1_799_990_600}));
        assert!(verify_assertion(&public, &expired, iss, NOW).is_err());
        let not_yet =
            sign(serde_json::json!({"iss":"u","sub":"u","aud":iss,"nbf":1_800_001_000,"exp":1_800_001_600}));
        assert!(verify_assertion(&public, &not_yet, iss, NOW).is_err());
        let other_sub = sign(serde_json::json!({"iss":"u","sub":"v","aud":iss,"exp":1_800_000_600}));
        assert!(verify_assertion(&public, &other_sub, iss, NOW).is_err());
        let (other_public, _) = generate_machine_key(&e).unwrap();
        assert!(verify_assertion(&other_public, &good, iss, NOW).is_err());
        assert!(normalize_public_key(public.as_bytes()).is_ok());
        assert!(normalize_public_key(b"nope").is_err());
    }
}
