//! `--trust-issuer`: accept access tokens of an external OpenID issuer. Its discovery document
//! and JWKS are fetched on first use and cached; an unknown `kid` triggers a refresh (at most
//! every 10 seconds), so the issuer can rotate keys.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use passlink_core::error::{Error, Kind, Result};
use passlink_core::ports::{ExternalClaims, TrustedIssuer};
use serde::Deserialize;
use tokio::sync::Mutex;

const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(10);

pub struct RemoteIssuer {
    issuer: String,
    http: reqwest::Client,
    cache: Mutex<Option<(JwkSet, Instant)>>,
}

fn invalid(cause: impl std::fmt::Display) -> Error {
    Error::new(Kind::Unauthenticated, "AUTH-7fs1e", "Errors.Token.Invalid").with_cause(cause)
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    aud: serde_json::Value,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
}

impl RemoteIssuer {
    pub fn new(issuer: &str) -> Result<RemoteIssuer> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::internal(format!("http client: {e}")))?;
        Ok(RemoteIssuer { issuer: issuer.trim_end_matches('/').to_string(), http, cache: Mutex::new(None) })
    }

    async fn fetch(&self) -> Result<JwkSet> {
        let unavailable = |e: reqwest::Error| {
            Error::new(Kind::Unavailable, "AUTH-tRu5t", "Errors.Store.Unavailable")
                .with_cause(format!("trusted issuer {}: {e}", self.issuer))
        };
        let discovery: serde_json::Value = self
            .http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| Error::internal(format!("trusted issuer {}: no jwks_uri", self.issuer)))?;
        self.http
            .get(jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }

    /// The key for `kid`, refreshing the cached JWKS when it is unknown (rate limited).
    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        let mut cache = self.cache.lock().await;
        let find = |set: &JwkSet| set.find(kid).and_then(|jwk| DecodingKey::from_jwk(jwk).ok());
        if let Some((set, fetched)) = cache.as_ref() {
            if let Some(k) = find(set) {
                return Ok(k);
            }
            if fetched.elapsed() < REFRESH_AT_MOST_EVERY {
                return Err(invalid("unknown kid"));
            }
        }
        let set = self.fetch().await?;
        let key = find(&set);
        *cache = Some((set, Instant::now()));
        key.ok_or_else(|| invalid("unknown kid"))
    }
}

#[async_trait]
impl TrustedIssuer for RemoteIssuer {
    fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn verify(&self, token: &str) -> Result<ExternalClaims> {
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        let allowed = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ];
        if !allowed.contains(&header.alg) {
            return Err(invalid("algorithm not allowed"));
        }
        let kid = header.kid.ok_or_else(|| invalid("no kid"))?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(header.alg);
        v.validate_exp = false; // the core checks lifetimes against its clock
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims = Default::default();
        v.set_issuer(&[self.issuer.as_str(), &format!("{}/", self.issuer)]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(invalid)?.claims;
        let aud = match claims.aud {
            serde_json::Value::String(a) => vec![a],
            serde_json::Value::Array(v) => {
                v.into_iter().filter_map(|a| a.as_str().map(str::to_string)).collect()
            }
            _ => Vec::new(),
        };
        Ok(ExternalClaims { sub: claims.sub, aud, exp: claims.exp, nbf: claims.nbf })
    }
}
