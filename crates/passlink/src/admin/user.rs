//! `passlink user add`, `passlink link USER [--send] [--qr]`, `passlink passkeys USER` and
//! `passlink revoke USER [--code-id ID]`: enroll a user from the terminal (AddHumanUser,
//! CreatePasskeyRegistrationLink, and passlink's own ListPasskeys, which shows each passkey's
//! last use, and RevokeRegistrationCodes).

use serde_json::{Value, json};

use super::{Client, Target};

#[derive(clap::Args, Clone)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(clap::Subcommand, Clone)]
enum UserCommand {
    /// Add a human user (AddHumanUser); prints the new user's id.
    Add(UserAddArgs),
}

#[derive(clap::Args, Clone)]
struct UserAddArgs {
    /// The user's email address: registration links are sent there.
    #[arg(long)]
    email: String,
    #[arg(long)]
    given_name: String,
    #[arg(long)]
    family_name: String,
    /// The login name (default: the email address).
    #[arg(long)]
    username: Option<String>,
    /// The user's organization (default: the only one, if there is exactly one).
    #[arg(long)]
    org: Option<String>,
    /// Leave the email address unverified (default: the operator vouches for it).
    #[arg(long)]
    unverified_email: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args, Clone)]
pub struct LinkArgs {
    /// The user's id.
    user: String,
    /// Have passlink deliver the link to the user's email (or the configured webhook) instead of
    /// printing it.
    #[arg(long)]
    send: bool,
    /// Also print the link as a QR code in the terminal (to open it on a phone).
    #[arg(long, conflicts_with = "send")]
    qr: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args, Clone)]
pub struct PasskeysArgs {
    /// The user's id.
    user: String,
    /// Print the answer as JSON (passlink.enrollment.v1.ListPasskeysResponse) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args, Clone)]
pub struct RevokeArgs {
    /// The user's id.
    user: String,
    /// Revoke only this code (the code id of the link); default: every outstanding one.
    #[arg(long)]
    code_id: Option<String>,
    #[command(flatten)]
    target: Target,
}

pub async fn user(args: UserArgs) -> Result<(), String> {
    let UserCommand::Add(add) = args.command;
    let client = Client::new(&add.target)?;
    let org = match &add.org {
        Some(o) => o.clone(),
        None => client.only_org().await?,
    };
    let body = json!({
        "username": add.username.clone().unwrap_or_else(|| add.email.clone()),
        "organization": {"orgId": org},
        "profile": {"givenName": add.given_name, "familyName": add.family_name},
        "email": {"email": add.email, "isVerified": !add.unverified_email},
    });
    let added = client.call("zitadel.user.v2.UserService/AddHumanUser", body).await?;
    println!("user_id: {}", text(&added["userId"]));
    println!("org_id:  {org}");
    Ok(())
}

pub async fn link(args: LinkArgs) -> Result<(), String> {
    let client = Client::new(&args.target)?;
    const METHOD: &str = "zitadel.user.v2.UserService/CreatePasskeyRegistrationLink";
    if args.send {
        client.call(METHOD, json!({"userId": args.user, "sendLink": {}})).await?;
        println!(
            "A registration link is on its way to the user (`passlink events --user {}` shows",
            args.user
        );
        println!("whether it was delivered: …code.sent, or …code.send.failed).");
        return Ok(());
    }
    let created = client.call(METHOD, json!({"userId": args.user, "returnCode": {}})).await?;
    let link = hosted_link(
        &client.issuer().await,
        &args.user,
        text(&created["details"]["resourceOwner"]),
        text(&created["code"]["id"]),
        text(&created["code"]["code"]),
    );
    println!("{link}");
    if args.qr {
        println!("{}", qr(&link)?);
    }
    eprintln!("(one-time link: whoever opens it can register a passkey for this user; share it privately)");
    Ok(())
}

pub async fn passkeys(args: PasskeysArgs) -> Result<(), String> {
    let client = Client::new(&args.target)?;
    let listed = client
        .call("passlink.enrollment.v1.EnrollmentService/ListPasskeys", json!({"userId": args.user}))
        .await?;
    if args.json {
        println!("{listed}");
        return Ok(());
    }
    let keys = listed["result"].as_array().cloned().unwrap_or_default();
    if keys.is_empty() {
        println!("no passkeys (`passlink link {}` makes a registration link)", args.user);
        return Ok(());
    }
    print!("{}", table(&keys));
    Ok(())
}

pub async fn revoke(args: RevokeArgs) -> Result<(), String> {
    let client = Client::new(&args.target)?;
    let mut body = json!({"userId": args.user});
    if let Some(id) = &args.code_id {
        body["codeId"] = json!(id);
    }
    let revoked =
        client.call("passlink.enrollment.v1.EnrollmentService/RevokeRegistrationCodes", body).await?;
    let ids: Vec<&str> =
        revoked["revokedCodeIds"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    let cancelled = revoked["cancelledDeliveries"].as_u64().unwrap_or(0);
    println!("{}", revoke_summary(&ids, cancelled));
    Ok(())
}

/// What `passlink revoke` did, in one line.
fn revoke_summary(ids: &[&str], cancelled: u64) -> String {
    match ids {
        [] => "no outstanding registration codes: nothing revoked".to_string(),
        _ => format!(
            "revoked {} registration code(s): {} ({cancelled} unsent deliveries cancelled)",
            ids.len(),
            ids.join(", ")
        ),
    }
}

/// The hosted registration page's link for a returned code (what a sent link points to).
fn hosted_link(external: &str, user: &str, org: &str, code_id: &str, code: &str) -> String {
    let mut url = format!("{external}/ui/passkey/register?");
    url.push_str(
        &url::form_urlencoded::Serializer::new(String::new())
            .append_pair("userID", user)
            .append_pair("orgID", org)
            .append_pair("codeID", code_id)
            .append_pair("code", code)
            .finish(),
    );
    url
}

/// The link as a QR code of Unicode half blocks (two modules per character row), with a quiet
/// zone, readable by phone cameras in a terminal with dark text on a light background or the
/// reverse.
fn qr(link: &str) -> Result<String, String> {
    let code = qrcode::QrCode::with_error_correction_level(link, qrcode::EcLevel::M)
        .map_err(|e| format!("cannot encode the link as a QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

fn table(keys: &[Value]) -> String {
    let rows: Vec<[String; 6]> = keys
        .iter()
        .map(|k| {
            let backup = match (k["backupEligible"].as_bool(), k["backedUp"].as_bool()) {
                (Some(true), Some(true)) => "synced",
                (Some(true), _) => "can sync",
                _ => "device-bound",
            };
            [
                text(&k["id"]).to_string(),
                text(&k["name"]).to_string(),
                text(&k["creationDate"]).to_string(),
                k["lastUsed"].as_str().unwrap_or("never").to_string(),
                backup.to_string(),
                authenticator(k),
            ]
        })
        .collect();
    let header = ["ID", "NAME", "REGISTERED", "LAST USED", "BACKUP", "AUTHENTICATOR"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header.map(str::to_string)).chain(rows) {
        let cells: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The provider the AAGUID list names, else the AAGUID, else "-" (none reported).
fn authenticator(k: &Value) -> String {
    [&k["providerName"], &k["aaguid"]]
        .into_iter()
        .map(text)
        .find(|s| !s.is_empty())
        .unwrap_or("-")
        .to_string()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosted_link_escapes_its_values() {
        let l = hosted_link("https://id.example", "1", "2", "3", "a+b/c");
        assert_eq!(l, "https://id.example/ui/passkey/register?userID=1&orgID=2&codeID=3&code=a%2Bb%2Fc");
    }

    #[test]
    fn the_table_names_unused_passkeys_never_used() {
        let t = table(&[
            json!({"id": "7", "name": "Phone", "creationDate": "2026-01-01T00:00:00Z",
                   "backupEligible": true, "backedUp": true, "aaguid": "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
                   "providerName": "Google Password Manager"}),
            json!({"id": "8", "name": "Key", "creationDate": "2026-01-01T00:00:00Z",
                   "aaguid": "01020304-0506-0708-0102-030405060708"}),
            json!({"id": "9", "name": "Old", "creationDate": "2026-01-01T00:00:00Z"}),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID") && lines[0].contains("LAST USED"), "{t}");
        assert!(lines[1].contains("never") && lines[1].contains("synced"), "{t}");
        assert!(lines[1].ends_with("Google Password Manager"), "{t}");
        assert!(lines[2].ends_with("01020304-0506-0708-0102-030405060708"), "{t}");
        assert!(lines[3].ends_with(" -"), "{t}");
    }

    #[test]
    fn the_revoke_summary_counts() {
        assert_eq!(revoke_summary(&[], 0), "no outstanding registration codes: nothing revoked");
        assert_eq!(
            revoke_summary(&["1", "2"], 1),
            "revoked 2 registration code(s): 1, 2 (1 unsent deliveries cancelled)"
        );
    }

    #[test]
    fn a_link_renders_as_a_qr_code() {
        let q = qr("https://id.example/ui/passkey/register?userID=1").unwrap();
        assert!(q.lines().count() > 10 && q.contains('▀'), "{q}");
    }
}
