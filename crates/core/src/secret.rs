//! Secrets: one-time codes, access tokens and server keys.
//!
//! Every secret is a type whose `Debug` redacts it, so a stray `{:?}` in a log line cannot leak
//! one. Codes are stored only as a keyed hash (HMAC-SHA-256 under a server key, bound to the
//! code id); the plaintext needed for delivery is sealed with AES-256-GCM under another key.
//! Comparisons are constant-time.

use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::ports::Entropy;

const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A plaintext secret string (a one-time code or a token). `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The plaintext. Call sites of this are the only places a secret leaves its box.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A 256-bit key. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    pub fn generate(entropy: &dyn Entropy) -> Key {
        let mut k = [0u8; 32];
        entropy.fill(&mut k);
        Key(k)
    }
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
    pub fn from_base64(s: &str) -> Result<Key> {
        let v = URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|e| Error::internal(format!("server key is not base64url: {e}")))?;
        let arr: [u8; 32] = v.try_into().map_err(|_| Error::internal("server key must be 32 bytes"))?;
        Ok(Key(arr))
    }
}

/// The server's keys: one to hash codes, one (with an id, for rotation) to seal outbox plaintext,
/// and the RSA keys that sign access tokens.
#[derive(Debug, Clone)]
pub struct ServerKeys {
    pub code_hmac: Key,
    pub seal_key_id: String,
    pub seal: Key,
    pub signing: crate::oauth::TokenKeys,
}

impl ServerKeys {
    pub fn generate(entropy: &dyn Entropy) -> ServerKeys {
        ServerKeys {
            code_hmac: Key::generate(entropy),
            seal_key_id: "1".to_string(),
            seal: Key::generate(entropy),
            signing: crate::oauth::TokenKeys::default(),
        }
    }

    /// HMAC-SHA-256 of a code, bound to its id so a hash cannot be replayed for another code.
    pub fn hash_code(&self, code_id: &str, code: &Secret) -> [u8; 32] {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.code_hmac.0)
            .unwrap_or_else(|_| <Hmac<Sha256>>::new(&Default::default()));
        mac.update(code_id.as_bytes());
        mac.update(&[0]);
        mac.update(code.expose().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The WebAuthn user handle of a user: stable, opaque, and not the login name
    /// (HMAC-SHA-256 of the user id under the code key, domain-separated).
    pub fn user_handle(&self, user_id: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.code_hmac.0)
            .unwrap_or_else(|_| <Hmac<Sha256>>::new(&Default::default()));
        mac.update(b"passlink webauthn user handle\0");
        mac.update(user_id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a presented code against a stored hash.
    pub fn code_matches(&self, code_id: &str, presented: &Secret, stored: &[u8]) -> bool {
        let h = self.hash_code(code_id, presented);
        h.ct_eq(stored).into()
    }

    /// Seal `plaintext` with AES-256-GCM; `aad` binds the ciphertext to its context (the job id).
    pub fn seal(&self, entropy: &dyn Entropy, plaintext: &[u8], aad: &[u8]) -> Result<Sealed> {
        let cipher = Aes256Gcm::new_from_slice(&self.seal.0).map_err(Error::internal)?;
        let mut nonce = [0u8; 12];
        entropy.fill(&mut nonce);
        let ct = cipher
            .encrypt(&nonce.into(), Payload { msg: plaintext, aad })
            .map_err(|_| Error::internal("seal failed"))?;
        Ok(Sealed {
            key_id: self.seal_key_id.clone(),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ciphertext: URL_SAFE_NO_PAD.encode(ct),
        })
    }

    /// Open a value sealed with [`ServerKeys::seal`].
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>> {
        if sealed.key_id != self.seal_key_id {
            return Err(Error::internal(format!("unknown seal key id {}", sealed.key_id)));
        }
        let cipher = Aes256Gcm::new_from_slice(&self.seal.0).map_err(Error::internal)?;
        let nonce: [u8; 12] = URL_SAFE_NO_PAD
            .decode(&sealed.nonce)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::internal("bad nonce"))?;
        let ct = URL_SAFE_NO_PAD.decode(&sealed.ciphertext).map_err(Error::internal)?;
        cipher
            .decrypt(&nonce.into(), Payload { msg: &ct, aad })
            .map_err(|_| Error::internal("open failed: wrong key or tampered data"))
    }
}

/// An AES-GCM sealed value, as stored in an outbox row.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// A one-time code of `len` characters from `[A-Za-z0-9]`, without modulo bias
/// (rejection sampling over a CSPRNG).
pub fn generate_code(entropy: &dyn Entropy, len: usize) -> Secret {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        entropy.fill(&mut buf);
        for &b in &buf {
            // 62 * 4 = 248: accept bytes below 248 so every character is equally likely.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Secret(out)
}

/// A new opaque bearer token (256 bits, base64url).
pub fn generate_token(entropy: &dyn Entropy) -> Secret {
    let mut b = [0u8; 32];
    entropy.fill(&mut b);
    Secret(URL_SAFE_NO_PAD.encode(b))
}

/// SHA-256 of a token: how tokens are stored and looked up. Tokens carry 256 bits of entropy,
/// so a fast unkeyed hash is enough.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SeededEntropy;

    #[test]
    fn codes_are_12_alphanumerics() {
        let e = SeededEntropy::new(42);
        for _ in 0..200 {
            let c = generate_code(&e, 12);
            assert_eq!(c.expose().len(), 12);
            assert!(c.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn debug_redacts_secrets_and_keys() {
        let e = SeededEntropy::new(1);
        let c = generate_code(&e, 12);
        let k = ServerKeys::generate(&e);
        let dbg = format!("{c:?} {c} {k:?}");
        assert!(!dbg.contains(c.expose()));
        assert!(!dbg.contains(&k.seal.to_base64()));
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn code_hash_is_keyed_and_bound_to_the_id() {
        let e = SeededEntropy::new(2);
        let k = ServerKeys::generate(&e);
        let code = Secret::new("abcDEF123456");
        let h = k.hash_code("1", &code);
        assert!(k.code_matches("1", &code, &h));
        assert!(!k.code_matches("2", &code, &h));
        assert!(!k.code_matches("1", &Secret::new("abcDEF123457"), &h));
        let other = ServerKeys::generate(&e);
        assert!(!other.code_matches("1", &code, &h));
    }

    #[test]
    fn seal_round_trip_and_tamper_detection() {
        let e = SeededEntropy::new(3);
        let k = ServerKeys::generate(&e);
        let s = k.seal(&e, b"the code", b"job-1").unwrap_or_else(|_| unreachable_sealed());
        assert_eq!(k.open(&s, b"job-1").ok().as_deref(), Some(&b"the code"[..]));
        assert!(k.open(&s, b"job-2").is_err());
        assert!(!s.ciphertext.contains("the code"));
    }

    fn unreachable_sealed() -> Sealed {
        Sealed { key_id: String::new(), nonce: String::new(), ciphertext: String::new() }
    }

    #[test]
    fn token_hash_is_sha256() {
        assert_eq!(token_hash("").len(), 32);
        assert_ne!(token_hash("a"), token_hash("b"));
    }
}
