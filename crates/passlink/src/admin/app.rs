//! `passlink app add`: registers an OpenID Connect application (CreateProject +
//! CreateApplication) and prints its client id and, once, its secret.

use serde_json::json;

use super::{Client, Target};

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
    #[command(flatten)]
    target: Target,
}

pub async fn app(args: AppArgs) -> Result<(), String> {
    let AppCommand::Add(add) = args.command;
    let client = Client::new(&add.target)?;
    let project_id = match &add.project_id {
        Some(p) => p.clone(),
        None => {
            let org = match &add.org {
                Some(o) => o.clone(),
                None => client.only_org().await?,
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
    println!("issuer:         {}", client.issuer().await);
    if oidc["nonCompliant"].as_bool() == Some(true) {
        eprintln!("warning: the configuration is not compliant: {}", oidc["complianceProblems"]);
    }
    Ok(())
}
