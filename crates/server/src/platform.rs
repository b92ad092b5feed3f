//! The real clock, randomness and key material: the adapters behind the core's ports.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use passlink_core::error::{Error, Result};
use passlink_core::jwt::{SigningKey, TokenKeys};
use passlink_core::keys::ServerKeys;
use passlink_core::ports::{Clock, Entropy};
use passlink_core::secret::{Key, Secret};
use passlink_core::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl SystemClock {
    /// Whole seconds since the epoch.
    pub fn now_secs(&self) -> i64 {
        self.now().secs_nanos().0
    }
}

/// The operating system's CSPRNG.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        if let Err(e) = getrandom::fill(buf) {
            // Without randomness no code or token may be issued: stop rather than continue weakly.
            tracing::error!(error = %e, "the operating system's random source failed");
            std::process::abort();
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    code_hmac: String,
    seal_key_id: String,
    seal: String,
    /// RSA keys signing access tokens, oldest first; the newest signs, all verify.
    #[serde(default)]
    signing: Vec<SigningKeyFile>,
}

#[derive(Serialize, Deserialize)]
struct SigningKeyFile {
    kid: String,
    created_at: i64,
    private_pem: String,
}

/// How many signing keys are kept (the older ones only verify tokens issued before a rotation).
const KEPT_SIGNING_KEYS: usize = 3;

fn to_file(keys: &ServerKeys) -> KeyFile {
    KeyFile {
        code_hmac: keys.code_hmac.to_base64(),
        seal_key_id: keys.seal_key_id.clone(),
        seal: keys.seal.to_base64(),
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

/// Write `contents` to `path` with mode 0600, atomically (temp file + rename).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Load the server keys from `path`, or generate them there (mode 0600) on first start. A
/// signing key older than `signing_max_age` is rotated: a new one signs, the old ones still
/// verify the tokens they signed.
pub fn load_or_create_keys(
    path: &Path,
    entropy: &dyn Entropy,
    now: Timestamp,
    signing_max_age: std::time::Duration,
) -> Result<ServerKeys> {
    let mut keys = match std::fs::read_to_string(path) {
        Ok(s) => {
            let f: KeyFile = serde_json::from_str(&s)
                .map_err(|e| Error::internal(format!("{}: not a passlink key file: {e}", path.display())))?;
            let signing = f
                .signing
                .iter()
                .map(|k| {
                    SigningKey::from_pem(
                        k.kid.clone(),
                        Timestamp::from_unix_secs(k.created_at),
                        &k.private_pem,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            ServerKeys {
                code_hmac: Key::from_base64(&f.code_hmac)?,
                seal_key_id: f.seal_key_id,
                seal: Key::from_base64(&f.seal)?,
                signing: TokenKeys { keys: signing },
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ServerKeys::generate(entropy),
        Err(e) => return Err(Error::internal(format!("{}: {e}", path.display()))),
    };
    let existed = path.exists();
    if rotate_signing(&mut keys, entropy, now, signing_max_age)? || !existed {
        let json = serde_json::to_vec_pretty(&to_file(&keys)).map_err(Error::internal)?;
        write_private(path, &json).map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), signing_keys = keys.signing.keys.len(), "wrote server keys");
    }
    Ok(keys)
}

/// A fingerprint of the server keys that reveals nothing about them (an HMAC with the code key,
/// a SHA-256 of the seal key): replicas on one database compare it to refuse mismatched keys.
pub fn key_fingerprint(keys: &ServerKeys) -> String {
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
    let code = keys.hash_code("passlink.key-fingerprint", &Secret::new(""));
    let seal =
        passlink_core::secret::token_hash(&format!("passlink.seal-fingerprint:{}", keys.seal.to_base64()));
    format!("v1:{}:{}:{}", keys.seal_key_id, hex(&code[..16]), hex(&seal[..16]))
}

/// This machine's host name ("" if unknown).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim().to_string()
}

/// A 16-bit machine id for sonyflake ids: from configuration, else hostname and pid mixed.
pub fn machine_id(configured: Option<u16>) -> u16 {
    configured.unwrap_or_else(|| {
        let host = hostname();
        let mut h: u32 = 0x811c_9dc5; // FNV-1a
        for b in host.bytes().chain(std::process::id().to_le_bytes()) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        (h ^ (h >> 16)) as u16
    })
}
