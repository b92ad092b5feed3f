//! The server keys file (`<data-dir>/keys.json` or `--keys-file`) and the other private files
//! (`admin.pat`): written with mode 0600, atomically; refused at start when group or others may
//! read or write them; rotated offline by `passlink keys rotate` ([`rotate_keys`]).
//!
//! The format: the first key generation at the top level (`code_hmac`, `seal_key_id`, `seal`;
//! its HMAC key also derives WebAuthn user handles and is never replaced), the generations added
//! by rotations in `rotated` (oldest first; the last hashes and seals new codes), and the RSA
//! signing keys in `signing` (oldest first; the newest signs). A file without `rotated` is the
//! format of the releases before rotation, which read a rotated file as its first generation.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use passlink_core::error::{Error, Result};
use passlink_core::jwt::{SigningKey, TokenKeys};
use passlink_core::keys::{KeyGeneration, ServerKeys};
use passlink_core::ports::Entropy;
use passlink_core::secret::Key;
use passlink_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

#[derive(Serialize, Deserialize)]
struct KeyFile {
    code_hmac: String,
    seal_key_id: String,
    seal: String,
    /// Generations added by `passlink keys rotate`, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rotated: Vec<GenerationFile>,
    /// RSA keys signing access tokens, oldest first; the newest signs, all verify.
    #[serde(default)]
    signing: Vec<SigningKeyFile>,
}

#[derive(Serialize, Deserialize)]
struct GenerationFile {
    id: String,
    created_at: i64,
    code_hmac: String,
    seal: String,
}

#[derive(Serialize, Deserialize)]
struct SigningKeyFile {
    kid: String,
    created_at: i64,
    private_pem: String,
}

// The file's text of the keys is zeroed when the parsed or to-be-written form is dropped.
impl Drop for KeyFile {
    fn drop(&mut self) {
        self.code_hmac.zeroize();
        self.seal.zeroize();
    }
}

impl Drop for GenerationFile {
    fn drop(&mut self) {
        self.code_hmac.zeroize();
        self.seal.zeroize();
    }
}

impl Drop for SigningKeyFile {
    fn drop(&mut self) {
        self.private_pem.zeroize();
    }
}

/// How many signing keys are kept (the older ones only verify tokens issued before a rotation).
const KEPT_SIGNING_KEYS: usize = 3;

fn to_file(keys: &ServerKeys) -> KeyFile {
    let (first, rotated) = match keys.generations() {
        [first, rotated @ ..] => (first, rotated),
        // `ServerKeys` always has a generation.
        [] => (keys.current(), &[][..]),
    };
    KeyFile {
        code_hmac: first.code_hmac.to_base64(),
        seal_key_id: first.id.clone(),
        seal: first.seal.to_base64(),
        rotated: rotated
            .iter()
            .map(|g| GenerationFile {
                id: g.id.clone(),
                created_at: g.created_at.secs_nanos().0,
                code_hmac: g.code_hmac.to_base64(),
                seal: g.seal.to_base64(),
            })
            .collect(),
        signing: keys
            .signing
            .keys
            .iter()
            .map(|k| SigningKeyFile {
                kid: k.kid.clone(),
                created_at: k.created_at.secs_nanos().0,
                private_pem: k.private_pem().expose().to_string(),
            })
            .collect(),
    }
}

fn from_file(f: &KeyFile) -> Result<ServerKeys> {
    let signing = f
        .signing
        .iter()
        .map(|k| SigningKey::from_pem(k.kid.clone(), Timestamp::from_unix_secs(k.created_at), &k.private_pem))
        .collect::<Result<Vec<_>>>()?;
    let first = KeyGeneration {
        id: f.seal_key_id.clone(),
        created_at: Timestamp::from_unix_secs(0),
        code_hmac: Key::from_base64(&f.code_hmac)?,
        seal: Key::from_base64(&f.seal)?,
    };
    let mut generations = vec![first];
    for g in &f.rotated {
        generations.push(KeyGeneration {
            id: g.id.clone(),
            created_at: Timestamp::from_unix_secs(g.created_at),
            code_hmac: Key::from_base64(&g.code_hmac)?,
            seal: Key::from_base64(&g.seal)?,
        });
    }
    let user_handle = generations[0].code_hmac.clone();
    ServerKeys::from_parts(user_handle, generations, TokenKeys { keys: signing })
}

/// Add a new signing key when there is none or the newest is older than `max_age`.
fn rotate_signing(
    keys: &mut ServerKeys,
    entropy: &dyn Entropy,
    now: Timestamp,
    max_age: std::time::Duration,
) -> Result<bool> {
    let stale = keys.signing.keys.last().is_none_or(|k| now >= k.created_at.plus(max_age));
    if !stale {
        return Ok(false);
    }
    let mut key = SigningKey::generate(entropy, String::new(), now)?;
    key.kid = key.thumbprint();
    keys.signing.keys.push(key);
    let excess = keys.signing.keys.len().saturating_sub(KEPT_SIGNING_KEYS);
    keys.signing.keys.drain(..excess);
    Ok(true)
}

/// Write `contents` to `path` with mode 0600, atomically (temp file + rename, then the
/// directory is synced so the rename survives a crash).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        // An existing temp file keeps its mode through `open`: make it private first.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// The message for a private file that group or others may read or write.
fn too_open(path: &Path, what: &str, mode: u32) -> String {
    format!(
        "{} ({what}) has mode {:04o}: group or others may read or write it; passlink refuses to \
         start with it. Restrict it with `chmod 600 {}` (and check who had access)",
        path.display(),
        mode & 0o7777,
        path.display()
    )
}

/// Refuse a private file (`what`: "server keys", "admin token") that group or others may read
/// or write. `Ok(false)` when it does not exist.
pub fn check_private(path: &Path, what: &str) -> std::result::Result<bool, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => Err(too_open(path, what, m.permissions().mode())),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Read and parse the key file at `path` (None when it does not exist), refusing it when group
/// or others may read or write it. The mode is checked on the opened file.
fn read_keys(path: &Path) -> Result<Option<ServerKeys>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::internal(format!("{}: {e}", path.display()))),
    };
    let mode = file
        .metadata()
        .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::internal(too_open(path, "server keys", mode)));
    }
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text).map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
    let f: KeyFile = serde_json::from_str(&text)
        .map_err(|e| Error::internal(format!("{}: not a passlink key file: {e}", path.display())))?;
    from_file(&f).map(Some)
}

fn write_keys(path: &Path, keys: &ServerKeys) -> Result<()> {
    let json = Zeroizing::new(serde_json::to_vec_pretty(&to_file(keys)).map_err(Error::internal)?);
    write_private(path, &json).map_err(|e| Error::internal(format!("{}: {e}", path.display())))
}

/// Load the server keys from `path`, or generate them there (mode 0600) on first start. A
/// signing key older than `signing_max_age` is rotated: a new one signs, the old ones still
/// verify the tokens they signed. A file group or others may read or write is refused.
pub fn load_or_create_keys(
    path: &Path,
    entropy: &dyn Entropy,
    now: Timestamp,
    signing_max_age: std::time::Duration,
) -> Result<ServerKeys> {
    let (mut keys, existed) = match read_keys(path)? {
        Some(keys) => (keys, true),
        None => (ServerKeys::generate(entropy), false),
    };
    if rotate_signing(&mut keys, entropy, now, signing_max_age)? || !existed {
        write_keys(path, &keys)?;
        tracing::info!(path = %path.display(), signing_keys = keys.signing.keys.len(), "wrote server keys");
    }
    Ok(keys)
}

/// What [`rotate_keys`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new generation's id (it hashes and seals new codes).
    pub generation: String,
    /// Generations in the file now (the older ones verify and open what they made).
    pub generations: usize,
    /// The new signing key's id (it signs new tokens).
    pub signing_kid: String,
    /// Signing keys in the file now.
    pub signing_keys: usize,
    /// Signing keys removed (beyond the newest three): tokens they signed no longer verify.
    pub signing_removed: Vec<String>,
}

/// `passlink keys rotate`: add a key generation (code HMAC + seal key) and a signing key to the
/// existing key file at `path`, keeping the old ones for what they made. Offline: servers read
/// the file at start, so every replica must get the new file and be restarted.
pub fn rotate_keys(path: &Path, entropy: &dyn Entropy, now: Timestamp) -> Result<Rotated> {
    let mut keys = read_keys(path)?.ok_or_else(|| {
        Error::internal(format!("{}: no key file (start passlink once to create it)", path.display()))
    })?;
    let before: Vec<String> = keys.signing.keys.iter().map(|k| k.kid.clone()).collect();
    let generation = keys.add_generation(entropy, now);
    rotate_signing(&mut keys, entropy, now, std::time::Duration::ZERO)?;
    write_keys(path, &keys)?;
    let after: Vec<String> = keys.signing.keys.iter().map(|k| k.kid.clone()).collect();
    Ok(Rotated {
        generation,
        generations: keys.generations().len(),
        signing_kid: after.last().cloned().unwrap_or_default(),
        signing_keys: after.len(),
        signing_removed: before.into_iter().filter(|k| !after.contains(k)).collect(),
    })
}

/// A fingerprint of the server keys that reveals nothing about them
/// ([`ServerKeys::fingerprint`]): replicas on one database compare it to refuse mismatched keys.
pub fn key_fingerprint(keys: &ServerKeys) -> String {
    keys.fingerprint()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use passlink_core::ports::SeededEntropy;
    use passlink_core::secret::Secret;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("passlink-keyfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

    #[test]
    fn a_file_others_may_read_is_refused_with_the_fix() {
        let d = dir("mode");
        let path = d.join("keys.json");
        let e = SeededEntropy::new(1);
        let t = Timestamp::from_unix_secs(1_800_000_000);
        load_or_create_keys(&path, &e, t, DAY).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_or_create_keys(&path, &e, t, DAY).unwrap_err().to_string();
            assert!(err.contains(&format!("{mode:04o}")), "{err}");
            assert!(err.contains(&format!("chmod 600 {}", path.display())), "{err}");
            assert!(check_private(&path, "server keys").is_err());
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(load_or_create_keys(&path, &e, t, DAY).is_ok());
            assert_eq!(check_private(&path, "admin token"), Ok(true));
        }
        assert_eq!(check_private(&d.join("none"), "admin token"), Ok(false));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotation_adds_a_generation_and_a_signing_key_and_keeps_the_old_ones() {
        let d = dir("rotate");
        let path = d.join("keys.json");
        let e = SeededEntropy::new(2);
        let t = Timestamp::from_unix_secs(1_800_000_000);
        let before = load_or_create_keys(&path, &e, t, DAY).unwrap();
        let old_file = std::fs::read_to_string(&path).unwrap();
        assert!(!old_file.contains("rotated"), "an unrotated file keeps the old format");
        let code = Secret::new("abcDEF123456");
        let hash = before.hash_code("c1", &code);
        let sealed = before.seal(&e, b"old", b"j1").unwrap();

        let r = rotate_keys(&path, &e, t.plus(DAY)).unwrap();
        assert_eq!((r.generation.as_str(), r.generations, r.signing_keys), ("2", 2, 2));
        assert!(r.signing_removed.is_empty());
        let after = load_or_create_keys(&path, &e, t.plus(DAY), DAY * 90).unwrap();
        assert_eq!(after.current().id, "2");
        assert_eq!(after.signing.keys.last().unwrap().kid, r.signing_kid);
        assert!(after.code_matches("c1", &code, &hash), "an old code still verifies");
        assert_eq!(after.open(&sealed, b"j1").unwrap(), b"old");
        assert_ne!(after.hash_code("c1", &code), hash, "new codes use the new generation");
        assert_eq!(after.user_handle("u1"), before.user_handle("u1"), "user handles stay");
        assert_eq!(key_fingerprint(&after), key_fingerprint(&before), "replicas still match the database");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        // Four rotations: the file keeps three signing keys and every generation.
        for _ in 0..3 {
            rotate_keys(&path, &e, t.plus(DAY * 2)).unwrap();
        }
        let last = load_or_create_keys(&path, &e, t.plus(DAY * 2), DAY * 90).unwrap();
        assert_eq!((last.generations().len(), last.signing.keys.len()), (5, KEPT_SIGNING_KEYS));
        assert!(last.code_matches("c1", &code, &hash));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotating_needs_an_existing_private_file() {
        let d = dir("rotate-missing");
        let e = SeededEntropy::new(3);
        let err = rotate_keys(&d.join("keys.json"), &e, Timestamp::from_unix_secs(0)).unwrap_err();
        assert!(err.to_string().contains("no key file"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
