//! Commands that talk to a running passlink with the admin token: `passlink app add` registers
//! an OpenID Connect application (CreateProject + CreateApplication over Connect's JSON, as
//! ZITADEL's SDKs call them) and prints its client id and, once, its secret.

use std::path::PathBuf;

use serde_json::{Value, json};

#[derive(clap::Args, Clone)]
pub struct AppArgs {
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(clap::Subcommand, Clone)]
enum AppCommand {
    /// Register an OIDC application (authorization code flow).
    Add(AddArgs),
}

#[derive(clap::Args, Clone)]
struct AddArgs {
    /// The application's name (shown on the login page).
    #[arg(long)]
    name: String,
    /// A redirect URI (exact match; repeatable).
    #[arg(long = "redirect-uri", required = true)]
    redirect_uris: Vec<String>,
    /// A URI the application may send users to after signing out (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (single-page or native app): no secret, PKCE required.
    #[arg(long)]
    public: bool,
    /// A native app (custom schemes and http://localhost redirect URIs).
    #[arg(long)]
    native: bool,
    /// Allow http:// redirect URIs (development only).
    #[arg(long)]
    dev_mode: bool,
    /// Add the application to this project instead of creating one named like the application.
    #[arg(long)]
    project_id: Option<String>,
    /// The organization of a new project (default: the only one, if there is exactly one).
    #[arg(long)]
    org: Option<String>,
    /// The running server.
    #[arg(long, env = "PASSLINK_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A file with the admin token (default: `<data-dir>/admin.pat`); or set PASSLINK_TOKEN.
    #[arg(long)]
    token_file: Option<PathBuf>,
    #[arg(long, env = "PASSLINK_DATA_DIR", default_value = "passlink-data")]
    data_dir: PathBuf,
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    /// One Connect unary call with JSON; the server's error message on failure.
    async fn call(&self, method: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}/{method}", self.url.trim_end_matches('/'));
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
}

fn token(args: &AddArgs) -> Result<String, String> {
    if args.token_file.is_none()
        && let Ok(t) = std::env::var("PASSLINK_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let file = args.token_file.clone().unwrap_or_else(|| args.data_dir.join("admin.pat"));
    let t = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read the admin token from {}: {e}", file.display()))?;
    Ok(t.trim().to_string())
}

pub async fn app(args: AppArgs) -> Result<(), String> {
    let AppCommand::Add(add) = args.command;
    let client = Client { http: reqwest::Client::new(), url: add.url.clone(), token: token(&add)? };
    let project_id = match &add.project_id {
        Some(p) => p.clone(),
        None => {
            let org = match &add.org {
                Some(o) => o.clone(),
                None => {
                    let orgs = client
                        .call("zitadel.org.v2.OrganizationService/ListOrganizations", json!({}))
                        .await?;
                    let list = orgs["result"].as_array().cloned().unwrap_or_default();
                    match list.as_slice() {
                        [one] => one["id"].as_str().unwrap_or_default().to_string(),
                        _ => return Err(format!("{} organizations: name one with --org", list.len())),
                    }
                }
            };
            let p = client
                .call(
                    "zitadel.project.v2.ProjectService/CreateProject",
                    json!({"organizationId": org, "name": add.name}),
                )
                .await?;
            p["projectId"].as_str().unwrap_or_default().to_string()
        }
    };
    let app_type = if add.native {
        "OIDC_APP_TYPE_NATIVE"
    } else if add.public {
        "OIDC_APP_TYPE_USER_AGENT"
    } else {
        "OIDC_APP_TYPE_WEB"
    };
    let auth =
        if add.public || add.native { "OIDC_AUTH_METHOD_TYPE_NONE" } else { "OIDC_AUTH_METHOD_TYPE_BASIC" };
    let body = json!({
        "projectId": project_id,
        "name": add.name,
        "oidcConfiguration": {
            "redirectUris": add.redirect_uris,
            "postLogoutRedirectUris": add.post_logout_redirect_uris,
            "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
            "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE", "OIDC_GRANT_TYPE_REFRESH_TOKEN"],
            "applicationType": app_type,
            "authMethodType": auth,
            "developmentMode": add.dev_mode,
        },
    });
    let created = client.call("zitadel.application.v2.ApplicationService/CreateApplication", body).await?;
    let oidc = &created["oidcConfiguration"];
    println!("application_id: {}", created["applicationId"].as_str().unwrap_or_default());
    println!("project_id:     {project_id}");
    println!("client_id:      {}", oidc["clientId"].as_str().unwrap_or_default());
    if let Some(secret) = oidc["clientSecret"].as_str().filter(|s| !s.is_empty()) {
        println!("client_secret:  {secret}");
        println!("(the secret is shown once; GenerateClientSecret makes a new one)");
    }
    let discovery = client
        .http
        .get(format!("{}/.well-known/openid-configuration", add.url.trim_end_matches('/')))
        .send()
        .await;
    let issuer = match discovery {
        Ok(r) => r.json::<Value>().await.ok().and_then(|d| d["issuer"].as_str().map(str::to_string)),
        Err(_) => None,
    };
    println!("issuer:         {}", issuer.unwrap_or_else(|| add.url.trim_end_matches('/').to_string()));
    if oidc["nonCompliant"].as_bool() == Some(true) {
        eprintln!("warning: the configuration is not compliant: {}", oidc["complianceProblems"]);
    }
    Ok(())
}
