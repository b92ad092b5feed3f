//! `passlink`: the binary. Parses flags and `PASSLINK_*` variables, sets up logging, binds the
//! listener and runs [`passlink_server::Server`] until SIGTERM/SIGINT. Nothing else lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use passlink_server::{Config, Server};

#[derive(Parser)]
#[command(name = "passlink", version, about = "Passkey enrollment server speaking ZITADEL's API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address to listen on; REST, gRPC, gRPC-web and Connect share it.
    #[arg(long, env = "PASSLINK_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the SQLite database, the server keys and admin.pat.
    #[arg(long, env = "PASSLINK_DATA_DIR", default_value = "passlink-data")]
    data_dir: PathBuf,
    /// Database URL: sqlite://PATH (default: <data-dir>/passlink.db) or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "PASSLINK_DATABASE")]
    database: Option<String>,
    /// Public origin of default links and the WebAuthn relying party (default http://localhost:<port>
    /// on loopback, else http://<listen>).
    #[arg(long, env = "PASSLINK_EXTERNAL_URL")]
    external_url: Option<String>,
    /// Server keys file (default <data-dir>/keys.json, generated with mode 0600 on first start).
    #[arg(long, env = "PASSLINK_KEYS_FILE")]
    keys_file: Option<PathBuf>,
    /// Machine id (0-65535) for ids; give each replica its own when several share a database.
    #[arg(long, env = "PASSLINK_MACHINE_ID")]
    machine_id: Option<u16>,
    /// Lifetime of passkey registration codes in seconds.
    #[arg(long, env = "PASSLINK_CODE_LIFETIME_SECS", default_value_t = 3600)]
    code_lifetime_secs: u64,
    /// More WebAuthn origins (besides --external-url) whose hosts may be relying party ids;
    /// repeat the flag or separate with commas.
    #[arg(long = "webauthn-origin", env = "PASSLINK_WEBAUTHN_ORIGINS", value_delimiter = ',')]
    webauthn_origins: Vec<String>,
    /// Lifetime of access tokens issued by /oauth/v2/token, in seconds.
    #[arg(long, env = "PASSLINK_ACCESS_TOKEN_LIFETIME_SECS", default_value_t = 43_200)]
    access_token_lifetime_secs: u64,
    /// Generate a new token-signing key at start when the newest is older than this many days.
    #[arg(long, env = "PASSLINK_SIGNING_KEY_MAX_AGE_DAYS", default_value_t = 90)]
    signing_key_max_age_days: u64,
    /// Trust access tokens of this OpenID issuer (repeatable, or comma-separated): a token
    /// authenticates the passlink user whose user id equals its `sub`.
    #[arg(long = "trust-issuer", env = "PASSLINK_TRUST_ISSUERS", value_delimiter = ',')]
    trust_issuers: Vec<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "passlink=debug".
    #[arg(long, env = "PASSLINK_LOG", default_value = "info")]
    log: String,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

async fn run(args: ServeArgs) -> Result<(), String> {
    let mut cfg = Config::new(args.listen, args.data_dir);
    cfg.database = args.database;
    cfg.external_url = args.external_url;
    cfg.keys_file = args.keys_file;
    cfg.machine_id = args.machine_id;
    cfg.code_lifetime = Duration::from_secs(args.code_lifetime_secs);
    cfg.webauthn_origins = args.webauthn_origins;
    cfg.trust_issuers = args.trust_issuers;
    cfg.access_token_lifetime = Duration::from_secs(args.access_token_lifetime_secs);
    cfg.signing_key_max_age = Duration::from_secs(args.signing_key_max_age_days.saturating_mul(86_400));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", cfg.listen))?;
    let server = Server::start(cfg, listener).await?;
    server.wait_for(shutdown_signal()).await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        None => cli.serve,
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("passlink: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("passlink: {e}");
            ExitCode::FAILURE
        }
    }
}
