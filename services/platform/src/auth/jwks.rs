//! The issuer's signing keys (a JSON Web Key Set): fetched from its
//! `jwks_uri` (found by OpenID Connect discovery unless configured), cached,
//! refreshed in the background, and fetched again — at most once per
//! `refetch_min` — when a token names a key the cache does not hold, as it
//! does after the issuer rotates its keys.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Largest key set or discovery document accepted.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("{0} must be an https URL (plain http only on loopback)")]
    Insecure(String),
    #[error("bad URL {0}")]
    Url(String),
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{url} is not what was expected: {reason}")]
    Document { url: String, reason: String },
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The keys tokens are verified with, by key id.
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self.read_keys().keys().cloned().collect();
        f.debug_struct("KeySet")
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

struct Inner {
    algorithm: Algorithm,
    keys: RwLock<HashMap<String, DecodingKey>>,
    remote: Option<Remote>,
}

struct Remote {
    url: String,
    client: HttpClient,
    refetch_min: Duration,
    /// When a token naming an unknown key last caused a fetch; held during
    /// every fetch, so there is one at a time.
    last_miss: tokio::sync::Mutex<Option<Instant>>,
}

impl KeySet {
    /// A fixed set (the development issuer's).
    pub fn fixed(jwks: &JwkSet, algorithm: Algorithm) -> Self {
        Self {
            inner: Arc::new(Inner {
                algorithm,
                keys: RwLock::new(usable_keys(jwks, algorithm)),
                remote: None,
            }),
        }
    }

    /// The set at `url`, fetched now (a failure is logged, and keys are
    /// fetched again when a token needs them) and refreshed every `refresh`
    /// in the background for as long as the set is in use.
    pub async fn remote(
        url: &str,
        algorithm: Algorithm,
        refresh: Duration,
        refetch_min: Duration,
    ) -> Result<Self, JwksError> {
        require_secure(url)?;
        let set = Self {
            inner: Arc::new(Inner {
                algorithm,
                keys: RwLock::new(HashMap::new()),
                remote: Some(Remote {
                    url: url.to_owned(),
                    client: http_client(),
                    refetch_min,
                    last_miss: tokio::sync::Mutex::new(None),
                }),
            }),
        };
        if let Err(error) = set.refetch(true).await {
            tracing::warn!(%error, "cannot fetch the issuer's keys yet; tokens are refused until they arrive");
        }
        let weak = Arc::downgrade(&set.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(refresh);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                if let Err(error) = (Self { inner }).refetch(true).await {
                    tracing::warn!(%error, "cannot refresh the issuer's keys; keeping the last ones");
                }
            }
        });
        Ok(set)
    }

    /// The key with id `kid` (or the only key, when the token names none),
    /// fetching the set again at most once per `refetch_min` when it is not
    /// known.
    pub async fn key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if self.inner.remote.is_some() {
            if let Err(error) = self.refetch(false).await {
                tracing::warn!(%error, "cannot fetch the issuer's keys");
            }
            return self.cached(kid);
        }
        None
    }

    fn cached(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.read_keys();
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, DecodingKey>> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fetches the set again: always when `scheduled`, else (a token named a
    /// key the cache does not hold) only if no such fetch happened in the
    /// last `refetch_min`, so tokens with unknown keys cannot make every
    /// request fetch.
    async fn refetch(&self, scheduled: bool) -> Result<(), JwksError> {
        let Some(remote) = &self.inner.remote else {
            return Ok(());
        };
        let mut last_miss = remote.last_miss.lock().await;
        if !scheduled {
            if last_miss.is_some_and(|at| at.elapsed() < remote.refetch_min) {
                return Ok(());
            }
            *last_miss = Some(Instant::now());
        }
        let body = fetch(&remote.client, &remote.url).await?;
        let jwks: JwkSet = serde_json::from_slice(&body).map_err(|error| JwksError::Document {
            url: remote.url.clone(),
            reason: error.to_string(),
        })?;
        let keys = usable_keys(&jwks, self.inner.algorithm);
        tracing::debug!(url = %remote.url, keys = keys.len(), "fetched the issuer's keys");
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        Ok(())
    }
}

/// The `jwks_uri` of `issuer`, by OpenID Connect discovery.
pub async fn discover(issuer: &str) -> Result<String, JwksError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    require_secure(&url)?;
    let body = fetch(&http_client(), &url).await?;
    let document: serde_json::Value =
        serde_json::from_slice(&body).map_err(|error| JwksError::Document {
            url: url.clone(),
            reason: error.to_string(),
        })?;
    document
        .get("jwks_uri")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or(JwksError::Document {
            url,
            reason: "no jwks_uri".to_owned(),
        })
}

/// The keys of `jwks` that can verify `algorithm`, by key id. A key whose
/// `alg` names another algorithm, or whose type does not fit, is left out.
fn usable_keys(jwks: &JwkSet, algorithm: Algorithm) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter(|jwk| fits(jwk, algorithm))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
        })
        .collect()
}

fn fits(jwk: &Jwk, algorithm: Algorithm) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm};
    let declared = jwk.common.key_algorithm;
    let family_fits = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => algorithm == Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(_) => algorithm == Algorithm::ES256,
        _ => false,
    };
    let declared_fits = match declared {
        None => true,
        Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
        Some(_) => false,
    };
    family_fits && declared_fits
}

fn http_client() -> HttpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// Keys must come over TLS, except from a server on this machine (a test's,
/// or an issuer behind a local proxy).
fn require_secure(url: &str) -> Result<(), JwksError> {
    let uri: http::Uri = url.parse().map_err(|_| JwksError::Url(url.to_owned()))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => Ok(()),
        (Some("http"), Some("127.0.0.1" | "localhost" | "[::1]")) => Ok(()),
        _ => Err(JwksError::Insecure(url.to_owned())),
    }
}

async fn fetch(client: &HttpClient, url: &str) -> Result<Bytes, JwksError> {
    let failed = |reason: String| JwksError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let uri: http::Uri = url.parse().map_err(|_| JwksError::Url(url.to_owned()))?;
    let response = tokio::time::timeout(FETCH_TIMEOUT, client.get(uri))
        .await
        .map_err(|_| failed("timed out".to_owned()))?
        .map_err(|error| failed(error.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("status {}", response.status())));
    }
    let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES);
    let collected = tokio::time::timeout(FETCH_TIMEOUT, body.collect())
        .await
        .map_err(|_| failed("timed out".to_owned()))?
        .map_err(|error| failed(error.to_string()))?;
    Ok(collected.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(require_secure("https://login.example.nhs.uk/jwks").is_ok());
        assert!(require_secure("http://127.0.0.1:8080/jwks").is_ok());
        assert!(require_secure("http://login.example.nhs.uk/jwks").is_err());
        assert!(require_secure("ftp://x/y").is_err());
    }
}
