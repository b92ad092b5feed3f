//! `passlink keys rotate`: a new key generation in the server keys file, offline (the server
//! reads the file at start). See [`passlink_server::keyfile::rotate_keys`].

use std::path::PathBuf;

use clap::Subcommand;
use passlink_core::ports::Clock as _;
use passlink_server::platform::{OsEntropy, SystemClock};

#[derive(clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new key generation to the keys file: a code-hashing key, a code-sealing key and a
    /// token-signing key used for everything new. The previous keys stay in the file, so codes,
    /// links waiting for delivery and tokens made before keep working until they expire (the
    /// three newest signing keys are kept). Servers read the file at start: give every replica
    /// the new file and restart them.
    Rotate(RotateArgs),
}

#[derive(clap::Args)]
struct RotateArgs {
    #[arg(long, env = "PASSLINK_DATA_DIR", default_value = "passlink-data")]
    data_dir: PathBuf,
    /// The keys file (default <data-dir>/keys.json).
    #[arg(long, env = "PASSLINK_KEYS_FILE")]
    keys_file: Option<PathBuf>,
}

pub fn keys(args: KeysArgs) -> Result<(), String> {
    match args.command {
        KeysCommand::Rotate(a) => rotate(a),
    }
}

fn rotate(args: RotateArgs) -> Result<(), String> {
    let path = args.keys_file.unwrap_or_else(|| args.data_dir.join("keys.json"));
    let r = passlink_server::keyfile::rotate_keys(&path, &OsEntropy, SystemClock.now())
        .map_err(|e| e.to_string())?;
    println!("keys file:      {} (mode 0600)", path.display());
    println!(
        "key generation: {} (hashes and seals new codes; {} generations kept)",
        r.generation, r.generations
    );
    println!("signing key:    {} (signs new tokens; {} signing keys kept)", r.signing_kid, r.signing_keys);
    for kid in &r.signing_removed {
        println!("removed:        signing key {kid} (tokens it signed no longer verify)");
    }
    println!("next:           restart passlink (every replica, with this file)");
    Ok(())
}
