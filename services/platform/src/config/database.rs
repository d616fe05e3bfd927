//! The database's settings: where it is, the pool, and what its TLS must be.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Where the data lives: `sqlite://PATH?mode=rwc` or `postgres://…`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Connection URL; may hold a password, so it is kept secret in logs.
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub connect_timeout_secs: u64,
    /// Longest a request waits for a pooled connection: well below the
    /// request timeout, so a starved pool answers UNAVAILABLE in time.
    pub acquire_timeout_secs: u64,
    /// Longest an SQLite write waits for the write lock before the request
    /// answers UNAVAILABLE: well below the request timeout.
    pub sqlite_busy_timeout_millis: u64,
    /// Run pending migrations when a server starts.
    pub migrate_on_start: bool,
    /// Refuse to connect to PostgreSQL unless the URL asks for
    /// `sslmode=verify-full` with an `sslrootcert`: TLS whose certificate is
    /// checked against that root and the host name.
    #[serde(default)]
    pub require_verified_tls: bool,
    /// The URL migrations connect with (`medsec migrate`, and a server's
    /// migrations on start): the tables' owner, when `url` is a less
    /// privileged runtime role. Unset: `url`.
    #[serde(default)]
    pub migration_url: Option<SecretString>,
    /// PostgreSQL: the role the services run as (the user of `url`). After
    /// migrating, the owner grants it the services' tables but only SELECT
    /// and INSERT on the audit trail (and what appending needs on the chain
    /// heads), revoking the rest. Unset: no grants are made.
    #[serde(default)]
    pub runtime_role: Option<String>,
}

/// Least time a migration waits for another replica's migration to finish.
const MIGRATION_LOCK_WAIT_MILLIS: u64 = 120_000;

impl DatabaseSettings {
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// The settings migrations connect with: `migration_url` in place of
    /// `url` when it is set, and patient waits for locks — replicas starting
    /// together migrate one after another (on SQLite each waits for the
    /// write lock, at least two minutes); the rest as
    /// they are.
    pub fn for_migrations(&self) -> Self {
        let mut owner = self.clone();
        if let Some(url) = &self.migration_url {
            owner.url = url.clone();
        }
        owner.sqlite_busy_timeout_millis = owner
            .sqlite_busy_timeout_millis
            .max(MIGRATION_LOCK_WAIT_MILLIS);
        owner.acquire_timeout_secs = owner
            .acquire_timeout_secs
            .max(MIGRATION_LOCK_WAIT_MILLIS / 1000);
        owner
    }

    /// Fails unless the URL meets `require_verified_tls`: a PostgreSQL URL
    /// with `sslmode=verify-full` and an `sslrootcert`. The mode is read by
    /// sqlx's own parser, so its spellings, its last-one-wins rule and the
    /// `PGSSLMODE` default count exactly as they will when connecting. SQLite
    /// has no connection to protect and is refused, so the setting cannot be
    /// met by accident.
    pub fn check_tls(&self) -> Result<(), TlsRequirementError> {
        use sea_orm::sqlx::postgres::{PgConnectOptions, PgSslMode};
        if !self.require_verified_tls {
            return Ok(());
        }
        let url = self.url();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(TlsRequirementError::NotPostgres);
        }
        let options: PgConnectOptions = url.parse().map_err(|_| TlsRequirementError::Unreadable)?;
        if !matches!(options.get_ssl_mode(), PgSslMode::VerifyFull) {
            return Err(TlsRequirementError::NotVerifyFull);
        }
        let query = url.split_once('?').map_or("", |(_, query)| query);
        let names_root = query.split('&').any(|pair| {
            matches!(
                pair.split_once('='),
                Some(("sslrootcert" | "ssl-root-cert" | "ssl-ca", value)) if !value.is_empty()
            )
        });
        if !names_root {
            return Err(TlsRequirementError::NoRootCert);
        }
        Ok(())
    }
}

/// Why a database URL does not meet `database.require_verified_tls`. The
/// URL itself is never shown: it may hold a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsRequirementError {
    #[error("database.require_verified_tls is set but database.url is not a PostgreSQL URL")]
    NotPostgres,
    #[error("database.url is not a PostgreSQL URL sqlx can read")]
    Unreadable,
    #[error(
        "database.require_verified_tls is set but database.url does not ask for \
         sslmode=verify-full"
    )]
    NotVerifyFull,
    #[error(
        "database.require_verified_tls is set but database.url names no sslrootcert \
         (the CA that signed the server's certificate)"
    )]
    NoRootCert,
}
