//! The server's keys: one HMAC key hashes codes (and derives WebAuthn user handles), one
//! AES-256-GCM key (with an id, for rotation) seals the code in outbox rows, and the RSA keys
//! ([`TokenKeys`]) sign access tokens. Comparisons are constant-time.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::jwt::TokenKeys;
use crate::ports::Entropy;
use crate::secret::{Key, Sealed, Secret};

/// The server's keys: one to hash codes, one (with an id, for rotation) to seal outbox plaintext,
/// and the RSA keys that sign access tokens.
#[derive(Debug, Clone)]
pub struct ServerKeys {
    pub code_hmac: Key,
    pub seal_key_id: String,
    pub seal: Key,
    pub signing: TokenKeys,
}

impl ServerKeys {
    pub fn generate(entropy: &dyn Entropy) -> ServerKeys {
        ServerKeys {
            code_hmac: Key::generate(entropy),
            seal_key_id: "1".to_string(),
            seal: Key::generate(entropy),
            signing: TokenKeys::default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SeededEntropy;
    use crate::secret::generate_code;

    #[test]
    fn debug_redacts_keys() {
        let e = SeededEntropy::new(1);
        let c = generate_code(&e, 12);
        let k = ServerKeys::generate(&e);
        let dbg = format!("{k:?}");
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
}
