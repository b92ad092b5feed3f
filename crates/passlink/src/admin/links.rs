//! `passlink links --csv users.csv [--send]`: registration links for the users of a CSV file
//! (passlink.enrollment.v1 CreateRegistrationLinks, in calls of up to 1000 ids), with a summary
//! (created / delivered / replayed / failed by reason) and each failure. Without `--send` the
//! codes go to `--out FILE` (created mode 0600), never to the terminal or a log.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Client, Target};

const METHOD: &str = "passlink.enrollment.v1.EnrollmentService/CreateRegistrationLinks";

#[derive(clap::Args, Clone)]
pub struct LinksArgs {
    /// The CSV file: a header row naming a `userId` (or `user_id`, or `id`) column, one user per
    /// row.
    #[arg(long)]
    csv: PathBuf,
    /// Have passlink deliver each link (email or the configured webhook) instead of returning
    /// the codes.
    #[arg(long)]
    send: bool,
    /// With --send: the link's URL template (ZITADEL's placeholders {{.UserID}}, {{.OrgID}},
    /// {{.CodeID}}, {{.Code}}); default: the hosted registration page.
    #[arg(long, requires = "send")]
    url_template: Option<String>,
    /// Without --send: write `userId,codeId,code` lines to this new file (mode 0600; an existing
    /// file is not overwritten).
    #[arg(long, required_unless_present = "send", conflicts_with = "send")]
    out: Option<PathBuf>,
    /// The idempotency key: users who already got a code with this key get none again.
    /// Default: derived from the file's content (and --send / --url-template), so running the
    /// same file again creates nothing twice; a lost --out file then means `passlink revoke`
    /// and a run with another key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// User ids per call (at most 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch_size: u16,
    #[command(flatten)]
    target: Target,
}

/// The fields of one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

/// The user ids of the CSV text: the `userId` / `user_id` / `id` column (case-insensitive) of
/// each non-empty row.
pub fn user_ids(csv: &str) -> Result<Vec<String>, String> {
    let mut lines = csv.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty());
    let header = fields(lines.next().ok_or("the CSV file is empty")?);
    let column = ["userid", "user_id", "id"]
        .iter()
        .find_map(|name| {
            header.iter().position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
        })
        .ok_or_else(|| format!("the CSV header names no userId, user_id or id column: {header:?}"))?;
    let mut ids = Vec::new();
    for (n, line) in lines.enumerate() {
        let id = fields(line).get(column).cloned().unwrap_or_default();
        if id.is_empty() {
            return Err(format!("row {} has no user id", n + 2));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// The default idempotency key: the file's content and the medium, hashed.
fn derived_key(csv: &[u8], send: bool, template: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(csv);
    h.update(if send { b"\0send\0".as_slice() } else { b"\0return\0".as_slice() });
    h.update(template.unwrap_or_default().as_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("csv-{hex}")
}

/// What the calls answered, counted.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Tally {
    pub created: u64,
    pub delivered: u64,
    pub replayed: u64,
    /// Failures by message ("<text> (<id>)") and each failed user.
    pub failed: BTreeMap<String, u64>,
    pub failures: Vec<(String, String)>,
}

impl Tally {
    /// Count one page's results; the `userId,codeId,code` lines of its returned codes.
    fn add(&mut self, answer: &Value) -> Vec<String> {
        let mut lines = Vec::new();
        for r in answer["results"].as_array().into_iter().flatten() {
            let user = r["userId"].as_str().unwrap_or_default();
            if let Some(message) = r["error"]["message"].as_str() {
                *self.failed.entry(message.to_string()).or_default() += 1;
                self.failures.push((user.to_string(), message.to_string()));
            } else if r["replayed"].as_bool() == Some(true) {
                self.replayed += 1;
            } else if let Some(code) = r["code"]["code"].as_str().filter(|c| !c.is_empty()) {
                self.created += 1;
                lines.push(format!("{user},{},{code}", r["code"]["id"].as_str().unwrap_or_default()));
            } else if r["delivery"]["codeId"].is_string() {
                self.delivered += 1;
            }
        }
        lines
    }

    /// The summary printed at the end (no codes in it).
    pub fn summary(&self, users: usize) -> String {
        let failed: u64 = self.failed.values().sum();
        let mut s = format!(
            "users: {users}, created: {}, delivered: {}, replayed: {}, failed: {failed}\n",
            self.created, self.delivered, self.replayed
        );
        for (reason, n) in &self.failed {
            s.push_str(&format!("  failed {n}: {reason}\n"));
        }
        for (user, reason) in &self.failures {
            s.push_str(&format!("  {user}: {reason}\n"));
        }
        s
    }
}

/// Create the --out file, readable by its owner only, never over an existing file.
fn create_out(path: &PathBuf) -> Result<std::fs::File, String> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|e| format!("cannot create {} (it must not exist yet): {e}", path.display()))
}

pub async fn links(args: LinksArgs) -> Result<(), String> {
    let csv = std::fs::read(&args.csv).map_err(|e| format!("cannot read {}: {e}", args.csv.display()))?;
    let text = String::from_utf8(csv.clone()).map_err(|_| format!("{} is not UTF-8", args.csv.display()))?;
    let ids = user_ids(&text)?;
    let key = match &args.idempotency_key {
        Some(k) => k.clone(),
        None => derived_key(&csv, args.send, args.url_template.as_deref()),
    };
    let client = Client::new(&args.target)?;
    let mut out = match &args.out {
        Some(p) => {
            let mut f = create_out(p)?;
            writeln!(f, "userId,codeId,code").map_err(|e| e.to_string())?;
            Some(f)
        }
        None => None,
    };
    let medium = if args.send {
        json!({"sendLink": args.url_template.as_ref().map_or(json!({}), |t| json!({"urlTemplate": t}))})
    } else {
        json!({"returnCode": {}})
    };
    let mut tally = Tally::default();
    for chunk in ids.chunks(usize::from(args.batch_size)) {
        let mut body = json!({"userIds": chunk, "idempotencyKey": key});
        if let (Some(b), Some(m)) = (body.as_object_mut(), medium.as_object()) {
            b.extend(m.clone());
        }
        let answer = client.call(METHOD, body).await?;
        let lines = tally.add(&answer);
        if let Some(f) = out.as_mut() {
            for l in lines {
                writeln!(f, "{l}").map_err(|e| format!("cannot write the codes: {e}"))?;
            }
        }
    }
    if let Some(f) = out.as_mut() {
        f.sync_all().map_err(|e| format!("cannot write the codes: {e}"))?;
    }
    print!("{}", tally.summary(ids.len()));
    println!("idempotency key: {key}");
    if let Some(p) = &args.out {
        println!("codes of the links created: {}", p.display());
    }
    let failed: u64 = tally.failed.values().sum();
    if failed > 0 {
        return Err(format!("{failed} user(s) got no link (listed above)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_id_column_is_found_by_name() {
        assert_eq!(user_ids("email,userId\na@x,1\n\"b,c\",2\r\n\n").unwrap(), ["1", "2"]);
        assert_eq!(user_ids("\u{feff}USER_ID\n7\n").unwrap(), ["7"]);
        assert_eq!(user_ids("id,userid\n1,2\n").unwrap(), ["2"], "userId wins over id");
        assert!(user_ids("email\na@x\n").unwrap_err().contains("no userId"));
        assert!(user_ids("userId,x\n,1\n").unwrap_err().contains("row 2"));
        assert!(user_ids("").is_err());
        assert_eq!(fields(r#"a,"b ""q"", c",d"#), ["a", r#"b "q", c"#, "d"]);
    }

    #[test]
    fn the_derived_key_follows_the_content_and_the_medium() {
        let k = derived_key(b"userId\n1\n", false, None);
        assert_eq!(k, derived_key(b"userId\n1\n", false, None));
        assert!(k.starts_with("csv-") && k.len() == 36);
        assert_ne!(k, derived_key(b"userId\n2\n", false, None));
        assert_ne!(k, derived_key(b"userId\n1\n", true, None));
        assert_ne!(derived_key(b"u", true, None), derived_key(b"u", true, Some("https://x")));
    }

    #[test]
    fn the_tally_counts_and_keeps_codes_out_of_the_summary() {
        let mut t = Tally::default();
        let lines = t.add(&json!({"results": [
            {"userId": "1", "code": {"id": "c1", "code": "SECRET"}},
            {"userId": "2", "code": {"id": "c2"}, "replayed": true},
            {"userId": "3", "delivery": {"codeId": "c3"}},
            {"userId": "4", "error": {"code": 5, "id": "COMMAND-M9dsd", "message": "User not found (COMMAND-M9dsd)"}},
            {"userId": "5", "error": {"code": 5, "id": "COMMAND-M9dsd", "message": "User not found (COMMAND-M9dsd)"}},
        ]}));
        assert_eq!(lines, ["1,c1,SECRET"]);
        let s = t.summary(5);
        assert!(s.starts_with("users: 5, created: 1, delivered: 1, replayed: 1, failed: 2\n"), "{s}");
        assert!(
            s.contains("failed 2: User not found (COMMAND-M9dsd)") && s.contains("  5: User not found"),
            "{s}"
        );
        assert!(!s.contains("SECRET"));
    }
}
