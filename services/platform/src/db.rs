//! The database: connect by URL (embedded SQLite or PostgreSQL), the one way
//! to start a transaction, what a database error means for the client, and
//! migrations run safely when several replicas start together.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

use sea_orm::sqlx;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm::{
    DatabaseTransaction, RuntimeErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::config::DatabaseSettings;
use crate::error::ApiError;

/// Advisory-lock key that serialises migrations across replicas
/// (the ASCII of "medsecdb").
const MIGRATION_LOCK_KEY: i64 = 0x6d65_6473_6563_6462;

/// Connects to the database named by `settings.url`. For SQLite the file's
/// folder is made when missing, writes wait for the lock instead of failing,
/// the journal is write-ahead so readers never block the writer, and
/// triggers fire for the deletes REPLACE makes. With
/// `require_verified_tls`, a URL that does not ask for verified TLS is
/// refused before any connection is made. A PostgreSQL that cannot be
/// reached is reported with the connection's own error, at once.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    settings
        .check_tls()
        .map_err(|error| DbErr::Custom(error.to_string()))?;
    let url = settings.url();
    let sqlite = url.starts_with("sqlite:");
    if sqlite {
        ensure_sqlite_folder(url)?;
    } else {
        reach_postgres(url, Duration::from_secs(settings.connect_timeout_secs)).await?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .sqlx_logging(false)
        // A client span per statement (sea-orm's `tracing-spans`), with its
        // kind as db.operation and its SQL as db.statement: every statement
        // binds its values as parameters, so no value reaches a trace.
        .record_stmt_in_spans(true);
    if sqlite {
        let busy_timeout = Duration::from_millis(settings.sqlite_busy_timeout_millis);
        options.map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
                // REPLACE's implicit delete fires DELETE triggers, so the
                // audit trail's refusal holds against INSERT OR REPLACE.
                .pragma("recursive_triggers", "ON")
        });
    }
    Database::connect(options).await
}

/// One connection to the PostgreSQL at `url`, closed again: the pool would
/// retry a refused connection until its acquire timeout and then report
/// only that it timed out.
async fn reach_postgres(url: &str, within: Duration) -> Result<(), DbErr> {
    use sqlx::Connection as _;
    let options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|error| DbErr::Conn(RuntimeErr::SqlxError(std::sync::Arc::new(error))))?;
    let connected = tokio::time::timeout(within, sqlx::PgConnection::connect_with(&options))
        .await
        .map_err(|_| {
            DbErr::Custom(format!(
                "cannot connect to PostgreSQL at {}:{}: no answer within {within:?}",
                options.get_host(),
                options.get_port()
            ))
        })?
        .map_err(|error| {
            DbErr::Custom(format!(
                "cannot connect to PostgreSQL at {}:{}: {error}",
                options.get_host(),
                options.get_port()
            ))
        })?;
    connected.close().await.ok();
    Ok(())
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

/// Begins a transaction that will write: the only way the services start
/// one (clippy's `disallowed-methods` refuses a bare `begin`). On SQLite it
/// takes the write lock at once (`BEGIN IMMEDIATE`), waiting its turn, so a
/// transaction that reads before it writes never fails to upgrade its lock;
/// elsewhere it is an ordinary transaction.
///
/// On SQLite the writers of this process also take turns in the order they
/// asked (a fair queue per database file) instead of polling for the lock:
/// a long run of short transactions — a commit of thousands of bookings —
/// cannot starve one booking waiting behind it. A turn not given within the
/// pool's acquire timeout is `UNAVAILABLE`.
#[allow(clippy::disallowed_methods)] // the one way to begin a write
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, DbErr> {
    let turn = turn(db).await?;
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    Ok(WriteTransaction { txn, _turn: turn })
}

/// A transaction begun by [`begin_write`]: a `DatabaseTransaction` (which
/// it derefs to) holding this process's turn at SQLite's write lock until
/// it commits, rolls back or is dropped.
#[derive(Debug)]
pub struct WriteTransaction {
    txn: DatabaseTransaction,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

// Queries run on the transaction itself; only the turn is added.
#[sea_orm_migration::async_trait::async_trait]
impl ConnectionTrait for WriteTransaction {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

/// Each SQLite file's queue of this process's writers.
static TURNS: LazyLock<std::sync::Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// This process's turn to write to `db` when it is SQLite (tokio's mutex
/// serves waiters first come, first served); `None` elsewhere.
async fn turn(db: &DatabaseConnection) -> Result<Option<OwnedMutexGuard<()>>, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let pool = db.get_sqlite_connection_pool();
    let file = pool.connect_options().get_filename().to_path_buf();
    let queue = {
        let mut turns = TURNS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        turns.entry(file).or_default().clone()
    };
    let wait = pool.options().get_acquire_timeout();
    match tokio::time::timeout(wait, queue.lock_owned()).await {
        Ok(turn) => Ok(Some(turn)),
        Err(_) => Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
    }
}

/// Begins a transaction that only reads (several reads that must agree with
/// each other). It never writes, so it needs no write lock on SQLite.
#[allow(clippy::disallowed_methods)] // the one read-only begin
pub async fn begin_read(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin().await
}

/// A savepoint inside `txn`: work that may fail and be rolled back alone
/// while the rest of the transaction goes on. Commit or roll it back.
#[allow(clippy::disallowed_methods)] // a nested begin is a savepoint, not a new lock
pub async fn savepoint(txn: &DatabaseTransaction) -> Result<DatabaseTransaction, DbErr> {
    txn.begin().await
}

/// Runs `work` in one write transaction ([`begin_write`]): committed when it
/// succeeds, rolled back when it fails or is dropped.
pub async fn write<T>(
    db: &DatabaseConnection,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let txn = begin_write(db).await?;
    let value = work(&txn).await?;
    txn.commit().await?;
    Ok(value)
}

/// Largest statement (SQL text and bound values) a bulk write should send:
/// sqlx sets no TCP_NODELAY on its sockets, and a statement sent in more
/// than one piece waits for the server's delayed ACK before its last piece
/// goes — 40 ms a statement on PostgreSQL, whatever its size. Many small
/// statements are far cheaper than a few large ones.
pub const STATEMENT_BYTES: usize = 8 * 1024;

/// Rows of about `bytes_per_row` (SQL text and bound values together) one
/// bulk insert or upsert should carry to stay under [`STATEMENT_BYTES`].
pub const fn rows_per_statement(bytes_per_row: usize) -> usize {
    let rows = STATEMENT_BYTES / bytes_per_row;
    if rows == 0 { 1 } else { rows }
}

/// Makes the write transaction `txn` take its turn behind every other one
/// that called this with the same `name`, until it ends: a transaction-scoped
/// advisory lock on PostgreSQL; on SQLite the write transaction already holds
/// the database's one write lock (see [`begin_write`]). For values that must
/// be handed out in commit order, such as the ids a list pages through.
pub async fn in_turn(txn: &DatabaseTransaction, name: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [lock_key(&format!("medsec/{name}")).into()],
        ))
        .await?;
    }
    Ok(())
}

/// The advisory-lock key of a name: its FNV-1a hash, stable across
/// processes and versions. Callers namespace their names (`medsec/…`,
/// `medsec.scheduling.optimise/…`) so keys do not collide with each other
/// or with the migration lock.
pub fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// What a database error means for the client, whatever the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFault {
    /// A concurrent transaction won: serialisation failure, deadlock, lock
    /// timeout, or a uniqueness or reference check the request's own
    /// checks passed a moment earlier. Retrying now is safe (`ABORTED`).
    Conflict,
    /// The database cannot serve for the moment: no pooled connection came
    /// free in time, the connection was lost, the server is shutting down or
    /// refusing connections, or SQLite is busy. Retry after a pause
    /// (`UNAVAILABLE`).
    Unavailable,
    /// Anything else is a fault of ours (`INTERNAL`).
    Other,
}

/// Classifies a database error by its SQLSTATE (PostgreSQL), its result
/// code (SQLite) or sqlx's kind of failure.
pub fn classify(error: &DbErr) -> DbFault {
    match error {
        DbErr::ConnectionAcquire(_) => DbFault::Unavailable,
        DbErr::Conn(RuntimeErr::SqlxError(error))
        | DbErr::Exec(RuntimeErr::SqlxError(error))
        | DbErr::Query(RuntimeErr::SqlxError(error)) => classify_sqlx(error),
        _ => DbFault::Other,
    }
}

fn classify_sqlx(error: &sqlx::Error) -> DbFault {
    match error {
        sqlx::Error::Database(error) => {
            let code = error.code().unwrap_or_default();
            match code.as_ref() {
                // PostgreSQL: serialization_failure, deadlock_detected,
                // lock_not_available.
                "40001" | "40P01" | "55P03" => DbFault::Conflict,
                // PostgreSQL: admin_shutdown, crash_shutdown, cannot_connect_now,
                // too_many_connections, and class 08 (connection exception).
                "57P01" | "57P02" | "57P03" | "53300" => DbFault::Unavailable,
                code if code.starts_with("08") => DbFault::Unavailable,
                // SQLite (extended result codes): BUSY and its variants, LOCKED.
                "5" | "261" | "517" | "773" | "6" | "262" => DbFault::Unavailable,
                _ => match error.kind() {
                    sqlx::error::ErrorKind::UniqueViolation
                    | sqlx::error::ErrorKind::ForeignKeyViolation
                    | sqlx::error::ErrorKind::ExclusionViolation => DbFault::Conflict,
                    _ => DbFault::Other,
                },
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => DbFault::Unavailable,
        _ => DbFault::Other,
    }
}

/// Applies the pending migrations of `M`, all or none, in one transaction
/// that first takes a database-wide lock: replicas (or processes sharing one
/// SQLite file) starting together migrate one at a time, and the later ones
/// find nothing to do.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = begin_write(db).await?;
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [MIGRATION_LOCK_KEY.into()],
            ))
            .await?;
            txn
        }
        DbBackend::Sqlite => {
            // SQLite has no advisory locks; its write lock serves, taken up
            // front by `begin_write`.
            db.execute_unprepared(
                "CREATE TABLE IF NOT EXISTS medsec_migration_lock (holder INTEGER PRIMARY KEY)",
            )
            .await?;
            let txn = begin_write(db).await?;
            txn.execute_unprepared(
                "INSERT OR REPLACE INTO medsec_migration_lock (holder) VALUES (1)",
            )
            .await?;
            txn
        }
        _ => return M::up(db, None).await,
    };
    M::up(&*txn, None).await?;
    txn.commit().await
}

#[cfg(test)]
mod tests {
    //! Real errors from real databases, classified: PostgreSQL at
    //! `MEDSEC_TEST_DATABASE_URL` (the tests fail when it is unreachable)
    //! and an SQLite file.

    use super::*;

    #[test]
    fn lock_keys_are_fnv1a_of_the_name() {
        // FNV-1a's published test vectors (64-bit): keys must never change,
        // or replicas of two versions would not exclude each other.
        assert_eq!(lock_key(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(lock_key("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_eq!(lock_key("foobar"), 0x8594_4171_f739_67e8_u64 as i64);
    }

    fn postgres_url() -> String {
        std::env::var("MEDSEC_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    async fn raise(db: &DatabaseConnection, sqlstate: &str) -> DbErr {
        db.execute_unprepared(&format!(
            "DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$"
        ))
        .await
        .unwrap_err()
    }

    #[tokio::test]
    async fn postgres_faults_are_classified_by_sqlstate() {
        let db = Database::connect(postgres_url())
            .await
            .expect("PostgreSQL is needed");
        for (sqlstate, fault) in [
            ("40001", DbFault::Conflict),
            ("40P01", DbFault::Conflict),
            ("55P03", DbFault::Conflict),
            ("23505", DbFault::Conflict),
            ("23503", DbFault::Conflict),
            ("57P01", DbFault::Unavailable),
            ("57P03", DbFault::Unavailable),
            ("53300", DbFault::Unavailable),
            ("08006", DbFault::Unavailable),
            ("23514", DbFault::Other),
            ("42P01", DbFault::Other),
        ] {
            assert_eq!(classify(&raise(&db, sqlstate).await), fault, "{sqlstate}");
        }
    }

    #[tokio::test]
    async fn a_terminated_backend_is_unavailable() {
        let mut options = ConnectOptions::new(postgres_url());
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options)
            .await
            .expect("PostgreSQL is needed");
        let error = db
            .execute_unprepared("SELECT pg_terminate_backend(pg_backend_pid())")
            .await
            .unwrap_err();
        assert_eq!(classify(&error), DbFault::Unavailable, "{error}");
        let status = tonic::Status::from(ApiError::from(error));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        // The pool replaces the lost connection.
        db.execute_unprepared("SELECT 1").await.expect("reconnects");
    }

    #[tokio::test]
    async fn a_busy_sqlite_database_is_unavailable() {
        let path = std::env::temp_dir().join(format!("medsec-busy-{}.db", uuid::Uuid::now_v7()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let connect = |url: String| async move {
            let mut options = ConnectOptions::new(url);
            options.max_connections(1).sqlx_logging(false);
            options.map_sqlx_sqlite_opts(|opts| opts.busy_timeout(Duration::ZERO));
            Database::connect(options).await.unwrap()
        };
        let (first, second) = (connect(url.clone()).await, connect(url).await);
        first
            .execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();
        let holding = begin_write(&first).await.unwrap();
        holding
            .execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let error = begin_write(&second).await.unwrap_err();
        assert_eq!(classify(&error), DbFault::Unavailable, "{error}");
        holding.rollback().await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn pool_timeouts_and_other_errors() {
        assert_eq!(
            classify(&DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
            DbFault::Unavailable
        );
        assert_eq!(classify(&DbErr::RecordNotFound("x".into())), DbFault::Other);
    }
}
