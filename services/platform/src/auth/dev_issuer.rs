//! The development issuer: with no OpenID Connect issuer configured, the
//! suite signs its own tokens, so `make run` and `medsec token` are all a
//! developer needs. Its ES256 signing key is made on first start and kept in
//! the database itself (table `medsec_dev_issuer`), so `medsec token`, run
//! with the same configuration as `medsec serve`, finds the same key on
//! SQLite and PostgreSQL alike. It is for development: the server refuses to
//! use it off loopback unless `auth.allow_dev_issuer` is set.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::jwks::KeySet;
use super::{Purpose, Role};

/// The `iss` of the development issuer's tokens.
pub const DEV_ISSUER: &str = "urn:medsec:dev-issuer";
/// Advisory-lock key serialising the first creation of the key (ASCII "medsecdi").
const KEY_LOCK: i64 = 0x6d65_6473_6563_6469;
/// How long a token from `medsec token` lasts unless asked otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// Why the development issuer cannot work.
#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    #[error("cannot keep the development issuer's key: {0}")]
    Database(#[from] DbErr),
    #[error("the development issuer's key is unusable: {0}")]
    Key(String),
    #[error("cannot sign a token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// The development issuer's key, ready to sign tokens and to verify them.
pub struct DevIssuer {
    kid: String,
    encoding: EncodingKey,
    jwks: JwkSet,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// The key kept in `db`, made on first use. Concurrent first starts
    /// agree on one key (the first insert wins).
    pub async fn open(db: &DatabaseConnection) -> Result<Self, DevIssuerError> {
        let backend = db.get_database_backend();
        let rng = SystemRandom::new();
        let fresh = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| DevIssuerError::Key("cannot generate a key".to_owned()))?;
        let fresh_kid = key_id(fresh.as_ref(), &rng)?;
        let txn = crate::db::begin_write(db).await?;
        if backend == sea_orm::DbBackend::Postgres {
            // Replicas starting together: one makes the table, the others wait.
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({KEY_LOCK})"))
                .await?;
        }
        txn.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS medsec_dev_issuer (\
             id INTEGER PRIMARY KEY, kid VARCHAR(64) NOT NULL, pkcs8 TEXT NOT NULL)",
        )
        .await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => {
                    "INSERT INTO medsec_dev_issuer (id, kid, pkcs8) VALUES (1, $1, $2) ON CONFLICT DO NOTHING"
                }
                _ => "INSERT INTO medsec_dev_issuer (id, kid, pkcs8) VALUES (1, ?, ?) ON CONFLICT DO NOTHING",
            },
            [fresh_kid.into(), STANDARD.encode(fresh.as_ref()).into()],
        ))
        .await?;
        let row = txn
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT kid, pkcs8 FROM medsec_dev_issuer WHERE id = 1",
            ))
            .await?
            .ok_or_else(|| DevIssuerError::Key("no key after making one".to_owned()))?;
        txn.commit().await?;
        let kid: String = row.try_get("", "kid")?;
        let pkcs8 = STANDARD
            .decode(row.try_get::<String>("", "pkcs8")?)
            .map_err(|error| DevIssuerError::Key(error.to_string()))?;
        Self::from_pkcs8(kid, &pkcs8, &rng)
    }

    /// A key of its own, kept nowhere: a stand-in for another issuer in tests.
    pub fn ephemeral() -> Result<Self, DevIssuerError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| DevIssuerError::Key("cannot generate a key".to_owned()))?;
        let kid = key_id(pkcs8.as_ref(), &rng)?;
        Self::from_pkcs8(kid, pkcs8.as_ref(), &rng)
    }

    fn from_pkcs8(kid: String, pkcs8: &[u8], rng: &SystemRandom) -> Result<Self, DevIssuerError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng)
            .map_err(|error| DevIssuerError::Key(error.to_string()))?;
        // An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(DevIssuerError::Key("not a P-256 public key".to_owned()));
        }
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
        });
        let jwks: JwkSet = serde_json::from_value(json!({ "keys": [jwk] }))
            .map_err(|error| DevIssuerError::Key(error.to_string()))?;
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ec_der(pkcs8),
            jwks,
        })
    }

    /// The public key set, as an issuer would serve it at its `jwks_uri`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The keys that verify this issuer's tokens.
    pub fn key_set(&self) -> KeySet {
        KeySet::fixed(&self.jwks, Algorithm::ES256)
    }

    /// A token for `subject` with `roles`, for `audience`, valid for
    /// `lifetime`, with an optional `purpose` claim.
    pub fn mint(
        &self,
        subject: &str,
        roles: &[Role],
        audience: &str,
        lifetime: Duration,
        purpose: Option<Purpose>,
    ) -> Result<String, DevIssuerError> {
        let now = chrono::Utc::now().timestamp();
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let mut claims = json!({
            "iss": DEV_ISSUER,
            "aud": audience,
            "sub": subject,
            "roles": roles.iter().map(|role| role.as_str()).collect::<Vec<_>>(),
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(lifetime),
        });
        if let (Some(purpose), Some(map)) = (purpose, claims.as_object_mut()) {
            map.insert("purpose".to_owned(), Value::from(purpose.as_str()));
        }
        self.sign(&claims)
    }

    /// Signs any claims, as the issuer would; tests use it to make tokens
    /// that must be refused (expired, for another audience).
    pub fn sign(&self, claims: &Value) -> Result<String, DevIssuerError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The key id: the start of the SHA-256 of the public key.
fn key_id(pkcs8: &[u8], rng: &SystemRandom) -> Result<String, DevIssuerError> {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng)
        .map_err(|error| DevIssuerError::Key(error.to_string()))?;
    let digest = Sha256::digest(pair.public_key().as_ref());
    Ok(digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}
