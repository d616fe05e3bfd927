//! Staff tokens verified against an issuer's key set fetched over HTTP: found
//! by OpenID Connect discovery, cached, fetched again once when the issuer
//! rotates its key, and not fetched again for every token naming a key it
//! does not have.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use medsec_platform::auth::Role;
use medsec_platform::auth::dev_issuer::DevIssuer;
use medsec_platform::auth::jwks::{self, KeySet};
use medsec_platform::auth::jwt::Verifier;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A stand-in OpenID Connect issuer on loopback: its discovery document and
/// key set, and how many times the key set was fetched.
#[derive(Clone)]
struct Issuer {
    url: String,
    jwks: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    async fn start(keys: &DevIssuer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = Self {
            url: url.clone(),
            jwks: Arc::new(Mutex::new(serde_json::to_string(keys.jwks()).unwrap())),
            fetches: Arc::new(AtomicUsize::new(0)),
        };
        let served = issuer.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    break;
                };
                let served = served.clone();
                tokio::spawn(async move {
                    let mut request = vec![0; 4096];
                    let read = stream.read(&mut request).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&request[..read]);
                    let body = if request.starts_with("GET /.well-known/openid-configuration") {
                        json!({ "issuer": served.url, "jwks_uri": format!("{}/jwks.json", served.url) })
                            .to_string()
                    } else {
                        served.fetches.fetch_add(1, Ordering::SeqCst);
                        served.jwks.lock().unwrap().clone()
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        issuer
    }

    fn rotate_to(&self, keys: &DevIssuer) {
        *self.jwks.lock().unwrap() = serde_json::to_string(keys.jwks()).unwrap();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn token(&self, keys: &DevIssuer) -> String {
        let now = chrono::Utc::now().timestamp();
        keys.sign(&json!({
            "iss": self.url,
            "aud": "medsec",
            "sub": "s.jones",
            "realm_access": { "roles": ["secretary"] },
            "exp": now + 600,
        }))
        .unwrap()
    }
}

async fn verifier(issuer: &Issuer) -> Verifier {
    let jwks_url = jwks::discover(&issuer.url).await.unwrap();
    assert_eq!(jwks_url, format!("{}/jwks.json", issuer.url));
    let keys = KeySet::remote(
        &jwks_url,
        Algorithm::ES256,
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    Verifier::new(
        &issuer.url,
        "medsec",
        Algorithm::ES256,
        "realm_access.roles",
        Duration::from_secs(5),
        keys,
    )
}

#[tokio::test]
async fn keys_are_discovered_cached_and_fetched_again_once_after_a_rotation() {
    let first = DevIssuer::ephemeral().unwrap();
    let issuer = Issuer::start(&first).await;
    let verifier = verifier(&issuer).await;
    assert_eq!(issuer.fetches(), 1, "fetched once at start");

    for _ in 0..5 {
        let verified = verifier.verify(&issuer.token(&first)).await.unwrap();
        assert_eq!(verified.subject, "s.jones");
        assert_eq!(verified.roles, [Role::Secretary]);
    }
    assert_eq!(issuer.fetches(), 1, "verified from the cache");

    let second = DevIssuer::ephemeral().unwrap();
    issuer.rotate_to(&second);
    verifier.verify(&issuer.token(&second)).await.unwrap();
    assert_eq!(issuer.fetches(), 2, "one fetch for the new key");
}

#[tokio::test]
async fn an_unknown_key_causes_at_most_one_fetch() {
    let known = DevIssuer::ephemeral().unwrap();
    let issuer = Issuer::start(&known).await;
    let verifier = verifier(&issuer).await;
    let stranger = DevIssuer::ephemeral().unwrap();
    for _ in 0..20 {
        assert!(verifier.verify(&issuer.token(&stranger)).await.is_err());
    }
    assert_eq!(
        issuer.fetches(),
        2,
        "the start, then one rate-limited refetch"
    );
    verifier.verify(&issuer.token(&known)).await.unwrap();
}

#[tokio::test]
async fn keys_are_only_fetched_over_tls_off_loopback() {
    let refused = KeySet::remote(
        "http://issuer.example.nhs.uk/jwks.json",
        Algorithm::RS256,
        Duration::from_secs(60),
        Duration::from_secs(60),
    )
    .await;
    assert!(refused.is_err());
}
