//! The webhook sender: a JSON POST, signed so the receiver can check it came from passlink.
//!
//! Headers: `content-type: application/json`, [`SIGNATURE_HEADER`]
//! `sha256=<hex of HMAC-SHA-256(secret, raw body)>`, `x-passlink-delivery-id` (stable per code:
//! a redelivery repeats it). Body:
//!
//! ```json
//! {"deliveryId":"passkey-link-<codeId>","type":"passkey_registration_link",
//!  "recipient":{"email":"…","displayName":"…","givenName":"…","familyName":"…","preferredLanguage":"…"},
//!  "userId":"…","orgId":"…","codeId":"…","link":"https://…","expiresAt":"2026-11-28T12:05:00Z"}
//! ```
//!
//! A 2xx answer is success; 408, 429 and 5xx (and network errors) are retried; any other 4xx
//! is permanent.

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use passlink_core::app::LinkMessage;
use passlink_core::secret::Secret;
use sha2::Sha256;

use crate::{SendError, Sender};

pub const SIGNATURE_HEADER: &str = "x-passlink-signature";
pub const DELIVERY_ID_HEADER: &str = "x-passlink-delivery-id";

/// `sha256=<hex>` of HMAC-SHA-256 over `body` with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(), // HMAC accepts keys of any length
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

pub struct WebhookSender {
    client: reqwest::Client,
    url: String,
    secret: Secret,
}

impl WebhookSender {
    pub fn new(url: &str, secret: Secret, timeout: Duration) -> Result<WebhookSender, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("--webhook-url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("--webhook-url {url:?}: must be http or https"));
        }
        if secret.expose().is_empty() {
            return Err("the webhook secret is empty".to_string());
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(WebhookSender { client, url: url.to_string(), secret })
    }
}

/// The JSON body (it carries the link: a secret).
pub(crate) fn body(m: &LinkMessage) -> Vec<u8> {
    let v = serde_json::json!({
        "deliveryId": m.message_id,
        "type": "passkey_registration_link",
        "recipient": {
            "email": m.to,
            "displayName": m.display_name,
            "givenName": m.given_name,
            "familyName": m.family_name,
            "preferredLanguage": m.preferred_language,
        },
        "userId": m.user_id,
        "orgId": m.org_id,
        "codeId": m.code_id,
        "link": m.link.expose(),
        "expiresAt": m.expires_at.to_rfc3339(),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

#[async_trait]
impl Sender for WebhookSender {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, m: &LinkMessage) -> Result<(), SendError> {
        let body = body(m);
        let signature = sign(self.secret.expose().as_bytes(), &body);
        let r = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_ID_HEADER, &m.message_id)
            .body(body)
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let reason = format!("webhook answered {status}");
                if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                    Err(SendError::permanent(reason))
                } else {
                    Err(SendError::transient(reason))
                }
            }
            // reqwest's error text names the webhook URL (configuration, not a secret), never
            // the body.
            Err(e) => Err(SendError::transient(format!("webhook: {}", e.without_url()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
