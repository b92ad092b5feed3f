//! The one domain error type.
//!
//! Every failure the core reports carries a [`Kind`] (which maps 1:1 onto a gRPC status code in
//! the transport layer), a ZITADEL-style site id (`COMMAND-M9dsd`) and an i18n message key
//! (`Errors.User.NotFound`). Request-validation failures carry no id, like protoc-gen-validate's
//! errors in ZITADEL, and their message is the full text.
//!
//! The precise internal reason (a database error, a wrong code) is kept in `cause` for the server
//! log; it is never sent to the client.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// What went wrong, coarsely. Transports map this to their status codes in one place each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    InvalidArgument,
    FailedPrecondition,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Unauthenticated,
    /// A concurrent write won a race for the same aggregate; the caller may retry.
    Aborted,
    ResourceExhausted,
    Unimplemented,
    /// The store cannot be reached right now.
    Unavailable,
    Internal,
}

/// A domain error: kind, stable id, message key, and an optional internal cause for logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    /// ZITADEL-style site id, e.g. `COMMAND-M9dsd`; empty for request-validation errors.
    pub id: &'static str,
    /// i18n key (`Errors.User.NotFound`), or the full text for validation errors.
    pub key: Cow<'static, str>,
    /// Internal detail for the server log only. Never contains a secret.
    pub cause: Option<String>,
    /// When the caller may try again ([`Error::rate_limited`]): REST answers it as
    /// `Retry-After`, gRPC and Connect as a `retry-after` header.
    pub retry_after: Option<Duration>,
}

impl Error {
    pub fn new(kind: Kind, id: &'static str, key: &'static str) -> Self {
        Error { kind, id, key: Cow::Borrowed(key), cause: None, retry_after: None }
    }

    /// A request-validation error in protoc-gen-validate's shape: no id, full message.
    pub fn validation(message: impl Into<String>) -> Self {
        Error {
            kind: Kind::InvalidArgument,
            id: "",
            key: Cow::Owned(message.into()),
            cause: None,
            retry_after: None,
        }
    }

    /// Attach an internal cause (for the log, never for the client).
    #[must_use]
    pub fn with_cause(mut self, cause: impl fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn internal(cause: impl fmt::Display) -> Self {
        Error::new(Kind::Internal, "INTERNAL-9Xk2p", "Errors.Internal").with_cause(cause)
    }

    pub fn unavailable(cause: impl fmt::Display) -> Self {
        Error::new(Kind::Unavailable, "STORE-Unav1", "Errors.Store.Unavailable").with_cause(cause)
    }

    /// Too many failed attempts from this client or on this target (user, code, session): try
    /// again after `retry_after` (ResourceExhausted: REST 429 with `Retry-After`).
    pub fn rate_limited(retry_after: Duration) -> Self {
        let mut e = Error::new(Kind::ResourceExhausted, "LIMIT-Rate1", "Errors.Limit.TooManyAttempts");
        e.retry_after = Some(retry_after);
        e
    }

    pub fn conflict() -> Self {
        Error::new(Kind::Aborted, "EVENT-Conc1", "Errors.Concurrency")
    }

    /// The human-readable text (English) of this error, without the id.
    pub fn text(&self) -> Cow<'static, str> {
        if self.id.is_empty() {
            return self.key.clone();
        }
        match translate(&self.key) {
            Some(t) => Cow::Borrowed(t),
            None => self.key.clone(),
        }
    }

    /// The message as ZITADEL renders it on the wire: `"<text> (<id>)"`.
    pub fn message(&self) -> String {
        if self.id.is_empty() { self.key.to_string() } else { format!("{} ({})", self.text(), self.id) }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("key", &self.key)
            .field("cause", &self.cause)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        if let Some(c) = &self.cause {
            write!(f, ": {c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// English texts of the message keys passlink uses (ZITADEL's wording where ZITADEL has one).
/// Keys ZITADEL leaves untranslated ("membership not found") are their own text.
pub fn translate(key: &str) -> Option<&'static str> {
    Some(match key {
        "Errors.Internal" => "An internal error occurred",
        "Errors.Invalid.Argument" => "Invalid argument",
        "Errors.Store.Unavailable" => "The store is unavailable, try again",
        "Errors.Concurrency" => "The object was changed concurrently, try again",
        "Errors.Limit.TooManyAttempts" => "Too many attempts, try again later",
        "Errors.Token.Missing" => "auth header missing",
        "Errors.Token.Invalid" => "Token is invalid",
        "Errors.Permission.Missing" => "No matching permissions found",
        "Errors.User.NotFound" => "User could not be found",
        "Errors.User.NotHuman" => "The User must be personal",
        "Errors.User.NotMachine" => "The User must be a machine",
        "Errors.User.AlreadyExists" => "User already exists",
        "Errors.User.UsernameTaken" => "Username is already taken",
        "Errors.User.NotActive" => "User is not active",
        "Errors.User.AlreadyInactive" => "User is already deactivated",
        "Errors.User.InvalidURLTemplate" => "URL Template is invalid",
        "Errors.User.Code.Invalid" => "Code is invalid",
        "Errors.User.Code.NoEmail" => "The user has no email address to send the link to",
        "Errors.Notification.Channels.NotPresent" => {
            "No delivery provider is configured (SMTP or webhook); use returnCode or configure one"
        }
        "Errors.Org.NotFound" => "Organisation not found",
        "Errors.Org.AlreadyExists" => "Organisation already exists",
        "Errors.Org.NameTaken" => "Organisation name is already taken",
        "Errors.Member.InvalidRole" => "The role is not valid for this resource",
        "Errors.Member.AlreadyExists" => "Member already exists",
        "Errors.PAT.ExpirationInPast" => "Expiration date is in the past",
        "Errors.Instance.AlreadyExists" => "The instance already exists",
        "Errors.User.MFA.Passwordless.NotExisting" => "Passkey does not exist",
        "Errors.User.WebAuthN.DomainNotAllowed" => "The domain is not a relying party of this server",
        "Errors.User.WebAuthN.BeginRegisterFailed" => "The passkey registration could not be started",
        "Errors.User.WebAuthN.ErrorOnParseCredential" => "The passkey credential could not be parsed",
        "Errors.User.WebAuthN.CreateCredentialFailed" => {
            "The passkey could not be verified: wrong origin, challenge or signature"
        }
        "Errors.User.WebAuthN.CredentialExists" => "This passkey is already registered",
        "Errors.User.WebAuthN.BeginLoginFailed" => "The passkey sign-in could not be started",
        "Errors.User.WebAuthN.NotFound" => "The passkey is not one of the user's",
        "Errors.User.WebAuthN.ValidateLoginFailed" => {
            "The passkey could not be verified: wrong origin, relying party, challenge or signature"
        }
        "Errors.User.WebAuthN.CloneDetected" => {
            "The passkey's signature counter went backwards; the authenticator may have been cloned"
        }
        "Errors.User.WebAuthN.AuthenticatorNotAllowed" => {
            "This authenticator is not allowed by the organization's policy; use another passkey provider or security key"
        }
        "Errors.User.WebAuthN.AttestationNotTrusted" => {
            "The organization's policy requires an attested authenticator; this one's attestation could not be verified against a trusted root"
        }
        "Errors.Session.NotExisting" => "Session does not exist",
        "Errors.Session.Terminated" => "Session is already terminated",
        "Errors.Session.Expired" => "Session is expired",
        "Errors.Session.Token.Invalid" => "The session token is invalid",
        "Errors.Session.WebAuthN.NoChallenge" => "The WebAuthN challenge is unknown, used or expired",
        "Errors.Session.WebAuthN.UserVerificationRequired" => {
            "Passkeys require user verification (USER_VERIFICATION_REQUIREMENT_REQUIRED)"
        }
        "Errors.Session.UserChange" => "The user of a session cannot be changed",
        "Errors.Session.PositiveLifetime" => "The session lifetime must not be negative",
        "Errors.Session.UserAgentMissing" => "The caller's user agent is not known; give a fingerprint id",
        "Errors.PermissionDenied" => "No matching permissions found",
        "Errors.AlreadyExists" => "The object already exists",
        "Errors.AuthRequest.NotExisting" => "Auth Request does not exist",
        "Errors.AuthRequest.AlreadyHandled" => "Auth Request has already been handled",
        "Errors.AuthRequest.Expired" => "The auth request has expired; start the sign-in again",
        "Errors.AuthRequest.MaxAgeExceeded" => {
            "The passkey check is older than the request's max_age; check the passkey again"
        }
        "Errors.AuthRequest.PasskeyRequired" => {
            "passlink issues a code only for a session whose passkey check verified the user"
        }
        "Errors.Project.NotFound" => "Project not found",
        "Errors.Project.NotActive" => "Project is not active",
        "Errors.Project.NotInactive" => "Project is not deactivated",
        "Errors.Project.App.NotExisting" => "Application doesn't exist",
        "Errors.Project.App.NotActive" => "Application is not active",
        "Errors.Project.App.NotInactive" => "Application is not inactive",
        "Errors.Project.App.OIDCAuthMethodNoSecret" => "Chosen OIDC Auth Method does not require a secret",
        "Errors.Project.App.OIDCConfigInvalid" => "OIDC configuration is invalid",
        "Errors.Project.App.Key.NotFound" => "Application key not found",
        "Errors.Project.App.AuthMethodNoPrivateKeyJWT" => {
            "The application's authentication method is not private key JWT"
        }
        "Errors.Project.App.SAMLNotSupported" => "SAML applications are not supported by passlink",
        "Errors.Query.TooManyNestingLevels" => "Too many nesting levels in the queries",
        "Errors.Query.LimitExceeded" => "The limit is too high",
        "List.Query.Invalid" => "The query is invalid",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_text_and_id() {
        let e = Error::new(Kind::NotFound, "COMMAND-M9dsd", "Errors.User.NotFound");
        assert_eq!(e.message(), "User could not be found (COMMAND-M9dsd)");
        assert_eq!(e.text(), "User could not be found");
    }

    #[test]
    fn validation_error_has_no_id() {
        let e =
            Error::validation("invalid X.UserId: value length must be between 1 and 200 runes, inclusive");
        assert_eq!(e.id, "");
        assert_eq!(e.kind, Kind::InvalidArgument);
        assert!(e.message().starts_with("invalid X.UserId"));
    }

    #[test]
    fn every_key_the_core_uses_has_a_text() {
        let sources = [
            include_str!("app/mod.rs"),
            include_str!("app/administrators.rs"),
            include_str!("app/bootstrap.rs"),
            include_str!("app/codes.rs"),
            include_str!("app/delivery.rs"),
            include_str!("app/links.rs"),
            include_str!("app/orgs.rs"),
            include_str!("app/passkeys.rs"),
            include_str!("app/sessions/mod.rs"),
            include_str!("app/sessions/rules.rs"),
            include_str!("app/sessions/commands.rs"),
            include_str!("app/tokens.rs"),
            include_str!("app/users.rs"),
            include_str!("app/lookups.rs"),
            include_str!("query.rs"),
            include_str!("passkey.rs"),
            include_str!("code.rs"),
            include_str!("permission.rs"),
            include_str!("template.rs"),
            include_str!("error.rs"),
        ];
        for src in sources {
            for (i, _) in src.match_indices("\"Errors.") {
                let key: String = src[i + 1..].chars().take_while(|c| *c != '"').collect();
                if key.matches('.').count() < 2 {
                    continue; // this test's own needle
                }
                assert!(translate(&key).is_some(), "no English text for {key}");
            }
        }
    }

    #[test]
    fn cause_is_not_in_the_wire_message() {
        let e = Error::internal("disk on fire");
        assert_eq!(e.message(), "An internal error occurred (INTERNAL-9Xk2p)");
        assert!(e.to_string().contains("disk on fire"));
    }
}
