//! OpenID Connect use cases: `apps` (ProjectService v2, ApplicationService v2) and `flow`
//! (the authorization code flow with PKCE). The read models and pure helpers are in
//! [`crate::oidc`].

mod apps;
mod flow;
#[cfg(test)]
mod tests;

pub use apps::{AppCreated, NewApp};
pub use flow::{AuthorizeParams, Authorized, Callback, OidcClient, OidcTokens, user_claims};
