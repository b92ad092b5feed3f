//! `passlink`: the binary. Parses the command line, sets up logging and runs `passlink serve`
//! ([`serve`]: flags, signals, [`passlink_server::Server`] until SIGTERM/SIGINT); `passlink events` reads
//! the store, `passlink backup` copies it, `passlink keys rotate` adds a key generation
//! ([`keys`]), and `admin` holds the commands that talk to a running server (`passlink app`,
//! `user`, `link`, `passkeys`, `revoke`, `status`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod keys;
mod serve;
use passlink_server::Config;
use serve::{LogFormat, ServeArgs, run};

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
    Serve(Box<ServeArgs>),
    /// Register an OpenID Connect application with a running server (ProjectService /
    /// ApplicationService over Connect, with the admin token): `passlink app add --name … --redirect-uri …`.
    App(admin::app::AppArgs),
    /// Add a user to a running server: `passlink user add --email … --given-name … --family-name …`.
    User(admin::user::UserArgs),
    /// Make a one-time passkey registration link for a user and print it (`--qr`: also as a QR
    /// code), or have passlink send it (`--send`).
    Link(admin::user::LinkArgs),
    /// Registration links for every user of a CSV file (a `userId` column), in calls of up to
    /// 1000: the codes to `--out FILE` (mode 0600), or delivered (`--send`); prints a summary.
    /// Running the same file again creates nothing twice (the default idempotency key is
    /// derived from the file's content).
    Links(admin::links::LinksArgs),
    /// List a user's passkeys: name, registration, last use, backup state, authenticator.
    Passkeys(admin::user::PasskeysArgs),
    /// Revoke a user's outstanding registration codes (all, or `--code-id ID`): their links stop
    /// working at once and unsent deliveries are cancelled.
    Revoke(admin::user::RevokeArgs),
    /// Is the running server healthy and ready; its version, store, uptime and delivery outbox
    /// (pending / in flight / failed). Exits 1 when it is not ready.
    Status(admin::status::StatusArgs),
    /// Copy the SQLite database of a running (or stopped) server to FILE, consistently, and its
    /// server keys and admin token beside it (FILE.keys.json, FILE.admin.pat, mode 0600).
    Backup(BackupArgs),
    /// Print a user's events as JSON lines (read-only; works next to a running server), e.g.
    /// to see whether a link was delivered (`…code.sent`) or given up (`…code.send.failed`).
    Events(EventsArgs),
    /// The server keys file: `passlink keys rotate` adds a new generation of keys (offline;
    /// restart the server after it).
    Keys(keys::KeysArgs),
}

#[derive(clap::Args, Clone)]
struct EventsArgs {
    /// The user id.
    #[arg(long)]
    user: String,
    #[arg(long, env = "PASSLINK_DATA_DIR", default_value = "passlink-data")]
    data_dir: PathBuf,
    #[arg(long, env = "PASSLINK_DATABASE")]
    database: Option<String>,
}

#[derive(clap::Args, Clone)]
struct BackupArgs {
    /// Where to write the copy of the database.
    file: PathBuf,
    /// Overwrite FILE (and FILE.keys.json, FILE.admin.pat) if they exist.
    #[arg(long)]
    force: bool,
    /// Copy only the database: keys.json and admin.pat are backed up separately (without them
    /// the copy's sealed codes, code and token hashes and signing keys are lost).
    #[arg(long)]
    without_keys: bool,
    #[arg(long, env = "PASSLINK_DATA_DIR", default_value = "passlink-data")]
    data_dir: PathBuf,
    #[arg(long, env = "PASSLINK_DATABASE")]
    database: Option<String>,
    #[arg(long, env = "PASSLINK_KEYS_FILE")]
    keys_file: Option<PathBuf>,
}

fn backup(args: BackupArgs) -> Result<(), String> {
    let mut cfg = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), args.data_dir);
    cfg.database = args.database;
    cfg.keys_file = args.keys_file;
    let w = passlink_server::backup::backup(&cfg, &args.file, args.force, !args.without_keys)?;
    let r = &w.report;
    println!(
        "database:    {} ({} pages of {} bytes, {} bytes; integrity_check ok)",
        w.database.display(),
        r.pages,
        r.page_size,
        r.bytes
    );
    match (&w.keys, &w.admin_token) {
        (Some(k), t) => {
            println!("keys:        {} (mode 0600)", k.display());
            if let Some(t) = t {
                println!("admin token: {} (mode 0600)", t.display());
            }
            println!("restore:     stop passlink, copy them to <data-dir>/passlink.db, keys.json, admin.pat");
        }
        (None, _) => println!("keys:        not copied (--without-keys): back up keys.json separately"),
    }
    Ok(())
}

async fn events(args: EventsArgs) -> Result<(), String> {
    let mut cfg = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), args.data_dir);
    cfg.database = args.database;
    let events = passlink_server::inspect::user_events(&cfg, &args.user).await?;
    if events.is_empty() {
        return Err(format!("no events for user {}", args.user));
    }
    for e in &events {
        println!("{}", passlink_server::inspect::event_json(e));
    }
    Ok(())
}

/// mimalloc instead of glibc malloc: many small, short-lived allocations per request (JSON,
/// events, views) on a few threads, where glibc's free lists and consolidation cost ~10 % of the
/// CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A command's outcome as the exit code, its error on stderr.
fn exit(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("passlink: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => *a,
        Some(Command::App(a)) => return exit(admin::run(admin::app::app(a))),
        Some(Command::User(a)) => return exit(admin::run(admin::user::user(a))),
        Some(Command::Link(a)) => return exit(admin::run(admin::user::link(a))),
        Some(Command::Links(a)) => return exit(admin::run(admin::links::links(a))),
        Some(Command::Passkeys(a)) => return exit(admin::run(admin::user::passkeys(a))),
        Some(Command::Revoke(a)) => return exit(admin::run(admin::user::revoke(a))),
        Some(Command::Status(a)) => return exit(admin::run(admin::status::status(a))),
        Some(Command::Events(a)) => return exit(admin::run(events(a))),
        Some(Command::Backup(a)) => return exit(backup(a)),
        Some(Command::Keys(a)) => return exit(keys::keys(a)),
        None => cli.serve,
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log).unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        // One object per line: timestamp, level, target and the event's fields at the top level.
        LogFormat::Json => {
            logs.json().flatten_event(true).with_current_span(false).with_span_list(false).init()
        }
    }
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
