//! What the suites share: the run's context and temporary directory, a passlink process, a suite
//! program with its `PASS ` lines filtered, the failure a suite returns, and the registry of live
//! child processes that a signal to the runner ends.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// Why a suite failed, and the passlink log to show the end of (if a passlink was running).
pub struct Failure {
    message: String,
    log: Option<PathBuf>,
}

/// What a suite returns.
pub type Outcome = Result<(), Failure>;

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), log: None }
    }

    /// Attach a passlink log whose last lines are printed with the failure.
    pub fn with_log(mut self, log: &Path) -> Failure {
        self.log.get_or_insert_with(|| log.to_path_buf());
        self
    }

    /// Print the failure (and the tail of the log) to stderr.
    pub fn report(&self, suite: &str) {
        if let Some(log) = &self.log {
            eprintln!("--- passlink log ({}, last {LOG_TAIL} lines)", log.display());
            eprintln!("{}", tail(log, LOG_TAIL));
        }
        eprintln!("external suite {suite} FAILED: {}", self.message);
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::new(message)
    }
}

const LOG_TAIL: usize = 50;

fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// The run: where passlink is, how to call cargo, a temporary directory removed at the end, and a
/// runtime for the async helpers of the testkit.
pub struct Ctx {
    pub passlink: PathBuf,
    pub cargo: String,
    pub work: WorkDir,
    rt: tokio::runtime::Runtime,
}

impl Ctx {
    /// Changes into the workspace root (the suites' paths are relative to it, as in
    /// `scripts/test`) and finds the passlink binary built by `cargo build -p passlink`.
    pub fn new() -> Result<Ctx, String> {
        let root = passlink_testkit::workspace_root();
        std::env::set_current_dir(&root).map_err(|e| format!("cd {}: {e}", root.display()))?;
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
        let passlink = target.join("debug/passlink");
        if !passlink.is_file() {
            return Err(format!(
                "{} not found: build it first with `cargo build -p passlink`",
                passlink.display()
            ));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting a runtime: {e}"))?;
        let work = WorkDir::new()?;
        end_children_on_signal(work.0.clone());
        Ok(Ctx {
            passlink,
            // `cargo run` tells the program which cargo started it.
            cargo: std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()),
            work,
            rt,
        })
    }

    /// A path inside the run's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.0.join(name)
    }

    /// Run a future of the testkit (health checks, sleeps) to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Start passlink on a free port with `--data-dir <work>/<name>-data`, its log in
    /// `<work>/<name>.log`, and `args` after those (`{port}` in them replaced by the port);
    /// returns once `/healthz` answers.
    pub fn start_passlink(&self, name: &str, args: &[String]) -> Result<Passlink, Failure> {
        self.start_passlink_tls(name, args, None)
    }

    /// [`Ctx::start_passlink`] for a passlink serving TLS (`--tls-cert-file` among `args`):
    /// `/healthz` is waited for over HTTPS, trusting the CA certificate `ca_pem`.
    pub fn start_passlink_tls(
        &self,
        name: &str,
        args: &[String],
        ca_pem: Option<&str>,
    ) -> Result<Passlink, Failure> {
        let port = passlink_testkit::free_port();
        let data_dir = self.path(&format!("{name}-data"));
        let log = self.path(&format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Proc::spawn(
            Command::new(&self.passlink)
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(&data_dir)
                .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
        )
        .map_err(|e| format!("starting {}: {e}", self.passlink.display()))?;
        let mut p = Passlink { child: Some(child), port, data_dir, log };
        // wait_healthy panics after 10 s; as a task its panic becomes an error here.
        let (base, client) = match ca_pem {
            None => (format!("http://127.0.0.1:{port}"), reqwest::Client::new()),
            Some(pem) => {
                let ca = reqwest::Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| format!("the test CA: {e}"))?;
                let client = reqwest::Client::builder()
                    .tls_certs_only([ca])
                    .build()
                    .map_err(|e| format!("an HTTPS client: {e}"))?;
                (format!("https://127.0.0.1:{port}"), client)
            }
        };
        let healthy = self.block_on(async {
            tokio::spawn(async move { passlink_testkit::wait_healthy_with(&client, &base).await }).await
        });
        if healthy.is_err() {
            let why = match p.child.as_mut().map(|c| c.0.try_wait()) {
                Some(Ok(Some(status))) => format!("passlink exited during start-up ({status})"),
                _ => format!("passlink did not answer /healthz on port {port}"),
            };
            return Err(Failure::new(why).with_log(&p.log));
        }
        Ok(p)
    }
}

/// The run's temporary directory; removed when dropped.
pub struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, String> {
        let dir = std::env::temp_dir().join(format!("passlink-external-suites-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running passlink; [`Passlink::stop`] ends it with SIGTERM and expects a clean exit, drop
/// (on a failure or a panic) kills it.
pub struct Passlink {
    child: Option<Proc>,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Passlink {
    /// The administrator's personal access token written at bootstrap (`<data-dir>/admin.pat`).
    pub fn admin_token(&self) -> Result<String, Failure> {
        let path = self.data_dir.join("admin.pat");
        std::fs::read_to_string(&path)
            .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| Failure::new(format!("reading {}: {e}", path.display())).with_log(&self.log))
    }

    /// SIGTERM, then wait: passlink drains and must exit 0.
    pub fn stop(mut self) -> Outcome {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        if !signal(child.0.id(), "-TERM") {
            return Err(Failure::new("could not send SIGTERM to passlink").with_log(&self.log));
        }
        match child.wait() {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => {
                Err(Failure::new(format!("passlink exited with {status} after SIGTERM")).with_log(&self.log))
            }
            Err(e) => Err(Failure::new(format!("waiting for passlink: {e}")).with_log(&self.log)),
        }
    }
}

/// Send a signal with `kill` (the workspace denies unsafe libc calls).
fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The processes the runner started and has not reaped yet: what a SIGINT or SIGTERM to the
/// runner kills (see [`end_children_on_signal`]).
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process of the runner: registered while it lives, killed on drop unless it already
/// exited (a failure or a panic never leaves one behind).
pub struct Proc(Child);

impl Proc {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Proc> {
        let mut live = live();
        let child = cmd.spawn()?;
        live.push(child.id());
        Ok(Proc(child))
    }

    /// Wait for the exit (and forget the process).
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.0.wait();
        live().retain(|&p| p != self.0.id());
        status
    }
}

/// A process started elsewhere (the testkit's SMTP sink) counted as a child while this lives;
/// declare it after the process's own guard so it is dropped first.
pub struct Registered(u32);

impl Registered {
    pub fn new(pid: u32) -> Registered {
        live().push(pid);
        Registered(pid)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        live().retain(|&p| p != self.0);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.wait();
    }
}

/// On SIGINT or SIGTERM: SIGTERM to every live child (passlink drains, node closes Chromium),
/// SIGKILL after 2 s, remove `work`, exit 130 or 143. Drop guards do not run when a signal ends
/// the process, so a thread of its own does their job; it holds the registry until the exit, so
/// the suite that lost its process cannot report that as a failure of its own.
pub fn end_children_on_signal(work: PathBuf) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        let code = rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal as on};
            let (Ok(mut int), Ok(mut term)) = (on(SignalKind::interrupt()), on(SignalKind::terminate()))
            else {
                return None;
            };
            tokio::select! {
                _ = int.recv() => Some(130),
                _ = term.recv() => Some(143),
            }
        });
        let Some(code) = code else { return };
        let live = live();
        eprintln!("\nexternal-suites: interrupted; stopping its processes");
        for &pid in live.iter() {
            signal(pid, "-TERM");
        }
        rt.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
        for &pid in live.iter() {
            signal(pid, "-KILL");
        }
        let _ = std::fs::remove_dir_all(&work);
        std::process::exit(code);
    });
}

/// Run a suite program: its output is printed except the lines starting with `PASS ` (failures,
/// summaries and notes stay), its stderr passes through; fails unless it exits 0.
pub fn run_filtered(cmd: &mut Command) -> Outcome {
    let what = format!("{:?}", cmd.get_program());
    let mut child = Proc::spawn(cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()))
        .map_err(|e| format!("starting {what}: {e}"))?;
    if let Some(stdout) = child.0.stdout.take() {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut out = std::io::stdout();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) if line.starts_with(b"PASS ") => {}
                Ok(_) => {
                    let _ = out.write_all(&line);
                    let _ = out.flush();
                }
                Err(e) => return Err(Failure::new(format!("reading the output of {what}: {e}"))),
            }
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for {what}: {e}"))?;
    if status.success() { Ok(()) } else { Err(Failure::new(format!("{what} failed ({status})"))) }
}

/// Run a command with its output passed through; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Outcome {
    let what = format!("{:?}", cmd.get_program());
    let status = Proc::spawn(cmd.stdin(Stdio::null()))
        .and_then(|mut c| c.wait())
        .map_err(|e| format!("running {what}: {e}"))?;
    if status.success() { Ok(()) } else { Err(Failure::new(format!("{what} failed ({status})"))) }
}

/// Wait `d` without blocking the runtime's timers.
pub fn pause(ctx: &Ctx, d: Duration) {
    ctx.block_on(async { tokio::time::sleep(d).await });
}

/// The full path of `program` found on `PATH` (what `command -v` prints).
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}
