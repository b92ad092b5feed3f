//! Who is calling: the one authentication step every protocol runs before a handler.
//!
//! [`authenticate`] turns the `Authorization: Bearer` token into a principal (cached in the core)
//! and `x-zitadel-orgid` into the context organization. What a handler needs is its [`Access`]
//! type: [`Caller`] (a token is required) or `Option<Caller>` (RegisterPasskey and
//! VerifyPasskeyRegistration: a registration code may stand in for a token, so a request without
//! an `Authorization` header runs anonymously; a header that is sent must be valid).

use axum::http::HeaderMap;
use passlink_core::app::{App, Caller};
use passlink_core::error::Result;

/// What a handler gets to know about its caller.
pub trait Access: Sized + Send + 'static {
    /// The caller of a request without an `Authorization` header, if the RPC allows one.
    fn without_token() -> Option<Self>;
    /// The caller of an authenticated request.
    fn with(caller: Caller) -> Self;
    /// The authenticated caller, if any (for the request log).
    fn caller(&self) -> Option<&Caller>;
}

/// A token is required.
impl Access for Caller {
    fn without_token() -> Option<Self> {
        None
    }
    fn with(caller: Caller) -> Self {
        caller
    }
    fn caller(&self) -> Option<&Caller> {
        Some(self)
    }
}

/// A registration code may authorize the request instead of a token.
impl Access for Option<Caller> {
    fn without_token() -> Option<Self> {
        Some(None)
    }
    fn with(caller: Caller) -> Self {
        Some(caller)
    }
    fn caller(&self) -> Option<&Caller> {
        self.as_ref()
    }
}

/// The caller of a request with these headers (the core's 401 for a missing or bad token).
pub async fn authenticate<A: Access>(app: &App, headers: &HeaderMap) -> Result<A> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization");
    if authorization.is_none()
        && let Some(anonymous) = A::without_token()
    {
        return Ok(anonymous);
    }
    let principal = app.authenticate(authorization).await?;
    Ok(A::with(app.caller(principal, header("x-zitadel-orgid"))))
}
