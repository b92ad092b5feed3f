//! The server's keys, in generations: each [`KeyGeneration`] has an HMAC key that hashes codes
//! and an AES-256-GCM key (with the generation's id, for rotation) that seals the code in outbox
//! rows; the RSA keys ([`TokenKeys`]) sign access tokens. A rotation adds a generation: the newest
//! hashes and seals new codes, every generation still verifies and opens the ones made before.
//! Comparisons are constant-time; key bytes are zeroed when dropped ([`Key`]).

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::error::{Error, Result};
use crate::jwt::TokenKeys;
use crate::ports::Entropy;
use crate::secret::{Key, Sealed, Secret};
use crate::time::Timestamp;

/// One generation of the symmetric keys. `Debug` shows the id only (the keys redact).
#[derive(Debug, Clone)]
pub struct KeyGeneration {
    /// The id sealed values carry (`Sealed::key_id`): "1", "2", …
    pub id: String,
    /// When it was added (the epoch for the first generation of an older key file).
    pub created_at: Timestamp,
    pub code_hmac: Key,
    pub seal: Key,
}

impl KeyGeneration {
    pub fn generate(entropy: &dyn Entropy, id: String, created_at: Timestamp) -> KeyGeneration {
        KeyGeneration { id, created_at, code_hmac: Key::generate(entropy), seal: Key::generate(entropy) }
    }
}

/// The server's keys: the symmetric generations (oldest first, never empty; the newest is used
/// for new codes), the key that derives WebAuthn user handles, and the token-signing keys.
#[derive(Debug, Clone)]
pub struct ServerKeys {
    generations: Vec<KeyGeneration>,
    /// The first generation's HMAC key. It is not rotated: a user handle is stored by the
    /// user's authenticators and must stay the same for the user's lifetime.
    user_handle: Key,
    pub signing: TokenKeys,
}

fn hmac(key: &Key) -> Hmac<Sha256> {
    <Hmac<Sha256>>::new_from_slice(&key.0).unwrap_or_else(|_| <Hmac<Sha256>>::new(&Default::default()))
}

fn hash_code_with(key: &Key, code_id: &str, code: &Secret) -> [u8; 32] {
    let mut mac = hmac(key);
    mac.update(code_id.as_bytes());
    mac.update(&[0]);
    mac.update(code.expose().as_bytes());
    mac.finalize().into_bytes().into()
}

impl ServerKeys {
    /// New keys: generation "1" and no signing key yet.
    pub fn generate(entropy: &dyn Entropy) -> ServerKeys {
        let first = KeyGeneration::generate(entropy, "1".to_string(), Timestamp::from_unix_secs(0));
        ServerKeys {
            user_handle: first.code_hmac.clone(),
            generations: vec![first],
            signing: TokenKeys::default(),
        }
    }

    /// Keys as a key file holds them: the user-handle key, the generations oldest first (at
    /// least one, distinct ids) and the signing keys.
    pub fn from_parts(
        user_handle: Key,
        generations: Vec<KeyGeneration>,
        signing: TokenKeys,
    ) -> Result<ServerKeys> {
        if generations.is_empty() {
            return Err(Error::internal("the key file has no key generation"));
        }
        for (i, g) in generations.iter().enumerate() {
            if generations[..i].iter().any(|o| o.id == g.id) {
                return Err(Error::internal(format!("the key file has key generation {} twice", g.id)));
            }
        }
        Ok(ServerKeys { generations, user_handle, signing })
    }

    /// The symmetric generations, oldest first.
    pub fn generations(&self) -> &[KeyGeneration] {
        &self.generations
    }

    /// The generation that hashes and seals new codes (the newest).
    pub fn current(&self) -> &KeyGeneration {
        // `from_parts` refuses an empty list, and nothing removes generations.
        &self.generations[self.generations.len() - 1]
    }

    /// The key that derives WebAuthn user handles.
    pub fn user_handle_key(&self) -> &Key {
        &self.user_handle
    }

    /// Add a generation (id: one more than the highest numeric id) that hashes and seals from
    /// now on; the older ones stay to verify and open what they made. Returns the new id.
    pub fn add_generation(&mut self, entropy: &dyn Entropy, now: Timestamp) -> String {
        let next = self.generations.iter().filter_map(|g| g.id.parse::<u64>().ok()).max().unwrap_or(0) + 1;
        let id = next.to_string();
        self.generations.push(KeyGeneration::generate(entropy, id.clone(), now));
        id
    }

    /// HMAC-SHA-256 of a code under the current generation, bound to its id so a hash cannot be
    /// replayed for another code.
    pub fn hash_code(&self, code_id: &str, code: &Secret) -> [u8; 32] {
        hash_code_with(&self.current().code_hmac, code_id, code)
    }

    /// The WebAuthn user handle of a user: stable, opaque, and not the login name
    /// (HMAC-SHA-256 of the user id under the user-handle key, domain-separated).
    pub fn user_handle(&self, user_id: &str) -> [u8; 32] {
        let mut mac = hmac(&self.user_handle);
        mac.update(b"passlink webauthn user handle\0");
        mac.update(user_id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a presented code against a stored hash, under every generation
    /// (a stored hash does not name its generation: a code made before a rotation still
    /// verifies). Every generation is computed, whichever matches.
    pub fn code_matches(&self, code_id: &str, presented: &Secret, stored: &[u8]) -> bool {
        let mut matched = Choice::from(0);
        for g in &self.generations {
            matched |= hash_code_with(&g.code_hmac, code_id, presented).ct_eq(stored);
        }
        matched.into()
    }

    /// Seal `plaintext` with AES-256-GCM under the current generation; `aad` binds the
    /// ciphertext to its context (the job id).
    pub fn seal(&self, entropy: &dyn Entropy, plaintext: &[u8], aad: &[u8]) -> Result<Sealed> {
        let g = self.current();
        let cipher = Aes256Gcm::new_from_slice(&g.seal.0).map_err(Error::internal)?;
        let mut nonce = [0u8; 12];
        entropy.fill(&mut nonce);
        let ct = cipher
            .encrypt(&nonce.into(), Payload { msg: plaintext, aad })
            .map_err(|_| Error::internal("seal failed"))?;
        Ok(Sealed {
            key_id: g.id.clone(),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            ciphertext: URL_SAFE_NO_PAD.encode(ct),
        })
    }

    /// A fingerprint that reveals nothing about the keys (an HMAC under the first generation's
    /// code key, a SHA-256 over its seal key): replicas on one database compare it to refuse
    /// mismatched key files. It names the first generation only, so a rotation keeps it.
    pub fn fingerprint(&self) -> String {
        fn hex(b: &[u8]) -> String {
            b.iter().map(|x| format!("{x:02x}")).collect()
        }
        let first = self.generations.first().unwrap_or_else(|| self.current());
        let code = hash_code_with(&first.code_hmac, "passlink.key-fingerprint", &Secret::new(""));
        let mut seal_text = format!("passlink.seal-fingerprint:{}", first.seal.to_base64());
        let seal = crate::secret::token_hash(&seal_text);
        zeroize::Zeroize::zeroize(&mut seal_text);
        format!("v1:{}:{}:{}", first.id, hex(&code[..16]), hex(&seal[..16]))
    }

    /// Open a value sealed with [`ServerKeys::seal`], by the generation it names.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>> {
        let g = self
            .generations
            .iter()
            .find(|g| g.id == sealed.key_id)
            .ok_or_else(|| Error::internal(format!("unknown seal key id {}", sealed.key_id)))?;
        let cipher = Aes256Gcm::new_from_slice(&g.seal.0).map_err(Error::internal)?;
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
        assert!(!dbg.contains(&k.current().seal.to_base64()));
        assert!(!dbg.contains(&k.current().code_hmac.to_base64()));
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

    const T1: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

    #[test]
    fn after_a_rotation_old_codes_still_verify_and_new_codes_use_the_new_generation() {
        let e = SeededEntropy::new(4);
        let old = ServerKeys::generate(&e);
        let mut keys = old.clone();
        let code = Secret::new("abcDEF123456");
        let old_hash = keys.hash_code("c1", &code);
        let old_sealed = keys.seal(&e, b"old code", b"job-1").unwrap_or_else(|_| unreachable_sealed());
        assert_eq!(old_sealed.key_id, "1");

        assert_eq!(keys.add_generation(&e, T1), "2");
        assert_eq!(keys.current().id, "2");
        assert_eq!(keys.current().created_at, T1);
        // Old: the code made before verifies (and only the right code), the sealed job opens.
        assert!(keys.code_matches("c1", &code, &old_hash));
        assert!(!keys.code_matches("c1", &Secret::new("abcDEF123457"), &old_hash));
        assert!(!keys.code_matches("c2", &code, &old_hash));
        assert_eq!(keys.open(&old_sealed, b"job-1").ok().as_deref(), Some(&b"old code"[..]));
        // New: hashed and sealed under generation 2, which the old keys cannot check or open.
        let new_hash = keys.hash_code("c2", &code);
        assert!(keys.code_matches("c2", &code, &new_hash));
        assert!(!old.code_matches("c2", &code, &new_hash), "the new hash is generation 2's");
        let new_sealed = keys.seal(&e, b"new code", b"job-2").unwrap_or_else(|_| unreachable_sealed());
        assert_eq!(new_sealed.key_id, "2");
        assert_eq!(keys.open(&new_sealed, b"job-2").ok().as_deref(), Some(&b"new code"[..]));
        assert!(old.open(&new_sealed, b"job-2").is_err());
        // What stays: user handles (stored by authenticators) and the fingerprint replicas share.
        assert_eq!(keys.user_handle("u1"), old.user_handle("u1"));
        assert_eq!(keys.fingerprint(), old.fingerprint());
        assert_eq!(keys.add_generation(&e, T1), "3");
        assert!(keys.code_matches("c1", &code, &old_hash) && keys.code_matches("c2", &code, &new_hash));
    }

    #[test]
    fn key_sets_need_a_generation_and_distinct_ids() {
        let e = SeededEntropy::new(5);
        let g = |id: &str| KeyGeneration::generate(&e, id.to_string(), T1);
        let handle = Key::generate(&e);
        assert!(ServerKeys::from_parts(handle.clone(), vec![], TokenKeys::default()).is_err());
        assert!(ServerKeys::from_parts(handle.clone(), vec![g("1"), g("1")], TokenKeys::default()).is_err());
        let k = ServerKeys::from_parts(handle.clone(), vec![g("1"), g("7")], TokenKeys::default());
        assert_eq!(k.map(|k| k.current().id.clone()).ok().as_deref(), Some("7"));
    }

    #[test]
    fn key_material_is_zeroed_on_drop() {
        fn zeroed_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroed_on_drop::<Key>();
        zeroed_on_drop::<Secret>();
    }

    fn unreachable_sealed() -> Sealed {
        Sealed { key_id: String::new(), nonce: String::new(), ciphertext: String::new() }
    }
}
