//! Secret values: one-time codes, bearer tokens, client secrets, 256-bit keys and sealed values.
//!
//! Every secret is a type whose `Debug` redacts it, so a stray `{:?}` in a log line cannot leak
//! one, and whose memory is zeroed when it is dropped. Tokens are stored as SHA-256, client
//! secrets as argon2id. The server's keys that hash and seal codes are in [`crate::keys`].

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::ports::{Entropy, EntropyRng};

const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A plaintext secret string (a one-time code, a token, a private key's PEM). `Debug` and
/// `Display` redact it; its bytes are zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for Secret {}

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

/// A 256-bit key. `Debug` redacts it; its bytes are zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for Key {}

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
        let v = zeroize::Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(s.trim())
                .map_err(|e| Error::internal(format!("server key is not base64url: {e}")))?,
        );
        let mut key = Key([0; 32]);
        if v.len() != key.0.len() {
            return Err(Error::internal("server key must be 32 bytes"));
        }
        key.0.copy_from_slice(&v);
        Ok(key)
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
    buf.zeroize();
    Secret(out)
}

/// A new opaque bearer token (256 bits, base64url).
pub fn generate_token(entropy: &dyn Entropy) -> Secret {
    let mut b = [0u8; 32];
    entropy.fill(&mut b);
    let token = Secret(URL_SAFE_NO_PAD.encode(b));
    b.zeroize();
    token
}

/// SHA-256 of a token: how tokens are stored and looked up. Tokens carry 256 bits of entropy,
/// so a fast unkeyed hash is enough.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new client secret (256 bits, base64url) and its argon2id hash (PHC string).
pub fn new_client_secret(entropy: &dyn Entropy) -> Result<(Secret, String)> {
    let secret = generate_token(entropy);
    let salt = SaltString::generate(&mut EntropyRng(entropy));
    let hash = argon2::Argon2::default()
        .hash_password(secret.expose().as_bytes(), &salt)
        .map_err(Error::internal)?
        .to_string();
    Ok((secret, hash))
}

/// Does `presented` match the stored argon2 hash? (constant-time inside argon2)
pub fn verify_client_secret(hash: &str, presented: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| argon2::Argon2::default().verify_password(presented.as_bytes(), &h).is_ok())
        .unwrap_or(false)
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
        let k = Key::generate(&e);
        let dbg = format!("{c:?} {c} {k:?}");
        assert!(!dbg.contains(c.expose()));
        assert!(!dbg.contains(&k.to_base64()));
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn client_secrets_are_hashed() {
        let e = SeededEntropy::new(5);
        let (secret, hash) = new_client_secret(&e).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains(secret.expose()));
        assert!(verify_client_secret(&hash, secret.expose()));
        assert!(!verify_client_secret(&hash, "wrong"));
    }

    #[test]
    fn token_hash_is_sha256() {
        assert_eq!(token_hash("").len(), 32);
        assert_ne!(token_hash("a"), token_hash("b"));
    }
}
