//! Commands that talk to a running passlink with the admin token, over Connect's JSON (as
//! ZITADEL's SDKs call it):
//! - [`app`]: `passlink app add` registers an OpenID Connect application;
//! - [`user`]: `passlink user add`, `passlink link USER [--send] [--qr]`, `passlink passkeys USER`,
//!   `passlink revoke USER [--code-id ID]`;
//! - [`links`]: `passlink links --csv users.csv [--send]` (bulk enrollment);
//! - [`status`]: `passlink status` (health, readiness, GetStatus).
//!
//! [`Target`] (server URL, token) is shared by all; [`Client`] makes the calls and turns HTTP
//! failures into messages that say what to do.

use std::path::PathBuf;

use serde_json::Value;

pub mod app;
// Bulk enrollment from a CSV file.
pub mod links;
pub mod status;
pub mod user;

/// Which server, and the token to call it with.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The running server.
    #[arg(long, env = "PASSLINK_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A file with the admin token (default: `<data-dir>/admin.pat`); or set PASSLINK_TOKEN.
    #[arg(long)]
    token_file: Option<PathBuf>,
    #[arg(long, env = "PASSLINK_DATA_DIR", default_value = "passlink-data")]
    data_dir: PathBuf,
    /// For an `https://` --url: trust only the CA certificates in this PEM file (as curl's
    /// --cacert), e.g. the CA that issued the server's --tls-cert-file. Default: the system's
    /// trusted roots.
    #[arg(long, env = "PASSLINK_CA_FILE")]
    ca_file: Option<PathBuf>,
}

/// The HTTP client: the system's roots, or only the CA certificates of `ca_file`.
fn http_client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).map_err(|e| format!("--ca-file {}: cannot read it: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-file {}: not PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("--ca-file {}: no certificate in it", path.display()));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

pub struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    pub fn new(target: &Target) -> Result<Client, String> {
        Ok(Client {
            http: http_client(target.ca_file.as_deref())?,
            url: target.url.trim_end_matches('/').to_string(),
            token: token(target)?,
        })
    }

    /// One Connect unary call with JSON; the server's error message on failure.
    pub async fn call(&self, method: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}/{method}", self.url);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header("connect-protocol-version", "1")
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                format!("cannot reach passlink at {}: {e} (is it running? --url / PASSLINK_URL)", self.url)
            })?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let message = v["message"].as_str().unwrap_or("no message");
        match status.as_u16() {
            401 => Err(format!(
                "{method}: the token was refused ({message}); check --token-file / PASSLINK_TOKEN"
            )),
            403 => Err(format!("{method}: the token may not do this ({message}); use the admin token")),
            _ => Err(format!("{method}: HTTP {status}: {message}")),
        }
    }

    /// GET a health path (`/healthz`, `/readyz`) without the token: its status and body.
    pub async fn probe(&self, path: &str) -> Result<(u16, String), String> {
        let resp = self.http.get(format!("{}{path}", self.url)).send().await.map_err(|e| {
            format!("cannot reach passlink at {}: {e} (is it running? --url / PASSLINK_URL)", self.url)
        })?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.unwrap_or_default().trim().to_string()))
    }

    /// The server's external URL (its OpenID Connect issuer), where its hosted pages are; the URL
    /// called if discovery does not answer.
    pub async fn issuer(&self) -> String {
        let discovery = self.http.get(format!("{}/.well-known/openid-configuration", self.url)).send().await;
        let issuer = match discovery {
            Ok(r) => r.json::<Value>().await.ok().and_then(|d| d["issuer"].as_str().map(str::to_string)),
            Err(_) => None,
        };
        issuer.map(|i| i.trim_end_matches('/').to_string()).unwrap_or_else(|| self.url.clone())
    }

    /// The id of the only organization (commands that need one take `--org` when there are more).
    pub async fn only_org(&self) -> Result<String, String> {
        let orgs =
            self.call("zitadel.org.v2.OrganizationService/ListOrganizations", serde_json::json!({})).await?;
        let list = orgs["result"].as_array().cloned().unwrap_or_default();
        match list.as_slice() {
            [one] => Ok(one["id"].as_str().unwrap_or_default().to_string()),
            _ => Err(format!("{} organizations: name one with --org", list.len())),
        }
    }
}

fn token(target: &Target) -> Result<String, String> {
    if target.token_file.is_none()
        && let Ok(t) = std::env::var("PASSLINK_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let file = target.token_file.clone().unwrap_or_else(|| target.data_dir.join("admin.pat"));
    let t = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read the admin token from {}: {e}", file.display()))?;
    Ok(t.trim().to_string())
}

/// Run one admin command on a small runtime of its own; the error is printed by `main`.
pub fn run<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
    rt.map_err(|e| e.to_string()).and_then(|rt| rt.block_on(f))
}
