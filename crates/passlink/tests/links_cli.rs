//! `passlink links --csv` against a running binary: codes to a 0600 file (never to the
//! terminal), per-user failures in the summary, a rerun of the same file creating nothing, and
//! `--send` without a delivery provider failing per user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn passlink(args: &[&str], base: &str, data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_passlink"))
        .args(args)
        .args(["--url", base, "--data-dir", data.to_str().unwrap()])
        .env_remove("PASSLINK_TOKEN")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn add_user(base: &str, data: &Path, email: &str) -> String {
    let o =
        passlink(&["user", "add", "--email", email, "--given-name", "G", "--family-name", "F"], base, data);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(&o).lines().find_map(|l| l.strip_prefix("user_id:")).unwrap().trim().to_string()
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("passlink-links-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn links_from_a_csv_file_once_with_a_summary() {
    let root = dir("csv");
    let data = root.join("data");
    let port = passlink_testkit::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Serving(
        Command::new(env!("CARGO_BIN_EXE_passlink"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", data.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    passlink_testkit::wait_healthy(&base).await;
    let a = add_user(&base, &data, "a@example.com");
    let b = add_user(&base, &data, "b@example.com");
    let csv = root.join("users.csv");
    std::fs::write(
        &csv,
        format!("email,userId\na@example.com,{a}\nnobody@example.com,4040404040\n\"b\",{b}\n"),
    )
    .unwrap();
    let out = root.join("codes.csv");
    let args = ["links", "--csv", csv.to_str().unwrap(), "--out", out.to_str().unwrap(), "--batch-size", "2"];
    let first = passlink(&args, &base, &data);
    let printed = stdout(&first);
    assert!(!first.status.success(), "one user failed: exit 1");
    assert!(printed.starts_with("users: 3, created: 2, delivered: 0, replayed: 0, failed: 1"), "{printed}");
    assert!(printed.contains("4040404040: ") && printed.contains("(COMMAND-M9dsd)"), "{printed}");
    let codes = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<&str>> = codes.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), [a.as_str(), b.as_str()], "{codes}");
    for r in &rows {
        assert!(r[1].len() > 5 && r[2].len() >= 6, "{codes}");
        assert!(!printed.contains(r[2]), "a code on the terminal");
        assert!(!String::from_utf8_lossy(&first.stderr).contains(r[2]), "a code on stderr");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);

    // The same file again: nothing created (the key is derived from the content); the existing
    // --out file is not overwritten.
    let again = passlink(&args, &base, &data);
    assert!(String::from_utf8_lossy(&again.stderr).contains("must not exist"), "{again:?}");
    let out2 = root.join("codes2.csv");
    let args2 = ["links", "--csv", csv.to_str().unwrap(), "--out", out2.to_str().unwrap()];
    let again = stdout(&passlink(&args2, &base, &data));
    assert!(again.starts_with("users: 3, created: 0, delivered: 0, replayed: 2, failed: 1"), "{again}");
    assert_eq!(std::fs::read_to_string(&out2).unwrap().lines().count(), 1, "header only");

    // --send without a delivery provider: each user's error, as CreatePasskeyRegistrationLink's.
    let send = stdout(&passlink(&["links", "--csv", csv.to_str().unwrap(), "--send"], &base, &data));
    assert!(send.contains("failed: 3") && send.contains("(MAIL-83nof)"), "{send}");
    let _ = std::fs::remove_dir_all(root);
}
