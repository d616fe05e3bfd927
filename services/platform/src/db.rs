//! The database: connect by URL (embedded SQLite or PostgreSQL) and run
//! migrations safely when several replicas start together.

use std::path::Path;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm::{
    DatabaseTransaction, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::config::DatabaseSettings;

/// Advisory-lock key that serialises migrations across replicas
/// (the ASCII of "medsecdb").
const MIGRATION_LOCK_KEY: i64 = 0x6d65_6473_6563_6462;

/// Connects to the database named by `settings.url`. For SQLite the file's
/// folder is made when missing, writes wait for the lock instead of failing,
/// and the journal is write-ahead so readers never block the writer.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let url = settings.url();
    let sqlite = url.starts_with("sqlite:");
    if sqlite {
        ensure_sqlite_folder(url)?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .sqlx_logging(false);
    if sqlite {
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    }
    Database::connect(options).await
}

/// Makes the folder of an SQLite database file, so the default
/// `sqlite://data/medsec.db` works on a fresh checkout.
fn ensure_sqlite_folder(url: &str) -> Result<(), DbErr> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    match Path::new(path).parent() {
        Some(folder) if !folder.as_os_str().is_empty() => std::fs::create_dir_all(folder)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", folder.display()))),
        _ => Ok(()),
    }
}

/// Escapes `%`, `_` and the backslash so that text matches itself in a `LIKE`
/// pattern; use with `LikeExpr::escape('\\')`.
pub fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Begins a transaction that will write. On SQLite it takes the write lock at
/// once (`BEGIN IMMEDIATE`), waiting its turn, so a transaction that reads
/// before it writes never fails to upgrade its lock; elsewhere it is an
/// ordinary transaction.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Applies the pending migrations of `M`, all or none, in one transaction
/// that first takes a database-wide lock: replicas (or processes sharing one
/// SQLite file) starting together migrate one at a time, and the later ones
/// find nothing to do.
#[allow(clippy::disallowed_methods)] // the migration lock is taken by hand, per backend
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [MIGRATION_LOCK_KEY.into()],
            ))
            .await?;
            txn
        }
        DbBackend::Sqlite => {
            // SQLite has no advisory locks; its write lock serves, taken by
            // writing first (a transaction that reads first could not upgrade).
            db.execute_unprepared(
                "CREATE TABLE IF NOT EXISTS medsec_migration_lock (holder INTEGER PRIMARY KEY)",
            )
            .await?;
            let txn = db.begin().await?;
            txn.execute_unprepared(
                "INSERT OR REPLACE INTO medsec_migration_lock (holder) VALUES (1)",
            )
            .await?;
            txn
        }
        _ => return M::up(db, None).await,
    };
    M::up(&txn, None).await?;
    txn.commit().await
}
