//! The run lock: one optimisation per specialty at a time, held for the
//! whole of a run, renewed while it runs, and released on every path by
//! [`RunLock::hold`].

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::Utc;
use medsec_platform::db::{self, begin_read, begin_write};
use medsec_platform::{ApiError, PreconditionKind};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait as _, IntoActiveModel as _, QueryFilter as _, Statement,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::store::entities::optimisation_lock;

/// At most this many runs hold a PostgreSQL lock connection at once in one
/// process. A run holds its lock's connection and uses a second for its
/// queries, so with the default pool of 10 this leaves connections for every
/// other RPC; further runs wait their turn instead of starving the pool.
const MAX_CONCURRENT_RUNS: usize = 4;

static RUN_SLOTS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(MAX_CONCURRENT_RUNS)));

/// The advisory-lock key of a specialty's run (the same keys as ever, so
/// replicas of different versions exclude each other).
pub fn lock_key(specialty: &str) -> i64 {
    db::lock_key(&format!("medsec.scheduling.optimise/{specialty}"))
}

fn run_in_progress(specialty: &str) -> ApiError {
    let subject = format!("specialties/{specialty}");
    ApiError::precondition(
        PreconditionKind::State,
        subject.clone(),
        format!(
            "{subject} is being optimised by another run: cannot start another until it finishes"
        ),
    )
}

/// One optimisation per specialty at a time. On PostgreSQL a transaction
/// holds `pg_try_advisory_xact_lock` per specialty for the whole run (it
/// only holds locks, so other RPCs are not blocked). SQLite has no advisory
/// locks and a long write transaction would block every booking, so there a
/// short transaction claims one row per specialty with a lease, deleted on
/// release.
///
/// A run renews its lock every third of the lease (`scheduling.run_lease_secs`)
/// while its work goes on, so a live run keeps it however long it takes,
/// and a process that dies holding it blocks its specialties for at most
/// the lease after its last renewal:
/// - SQLite: the rows' lease lapses and the next run takes them over.
/// - PostgreSQL: the advisory locks end with the lock transaction's
///   session. A process killed on a live machine has its sockets closed by
///   the kernel, so the server ends the session (and frees the locks) at
///   once; one whose machine or network vanished is caught by
///   `idle_in_transaction_session_timeout`, set to the lease on the lock
///   transaction, which the renewals (`SELECT 1`) keep from firing while
///   the run lives.
///
/// A renewal that finds the lock gone (another process took over a lapsed
/// lease, or the lock session died) stops the work: ABORTED, so two runs
/// never go on together.
///
/// The lock exists only inside [`RunLock::hold`], which releases it
/// whatever the run returns; dropping it (a run's future dropped when its
/// RPC is cancelled) releases it too.
#[derive(Debug)]
pub struct RunLock {
    held: Option<Held>,
    lease: Duration,
}

#[derive(Debug)]
enum Held {
    Postgres(DatabaseTransaction, OwnedSemaphorePermit),
    Sqlite {
        db: DatabaseConnection,
        holder: Uuid,
        rows: u64,
    },
}

impl RunLock {
    /// Runs `work` holding every specialty's lock, renewed every third of
    /// `lease` until `work` returns, and releases them whatever it returns.
    /// Takes every lock or none: FAILED_PRECONDITION naming the first
    /// specialty (in name order) another run holds, and `work` does not run.
    pub async fn hold<T>(
        db: &DatabaseConnection,
        specialties: &[String],
        lease: Duration,
        work: impl AsyncFnOnce() -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let lock = Self::acquire(db, specialties, lease.max(Duration::from_secs(1))).await?;
        let outcome = tokio::select! {
            biased;
            outcome = work() => outcome,
            lost = lock.keep_alive() => Err(lost),
        };
        let released = lock.release().await;
        let value = outcome?;
        released?;
        Ok(value)
    }

    async fn acquire(
        db: &DatabaseConnection,
        specialties: &[String],
        lease: Duration,
    ) -> Result<Self, ApiError> {
        let mut sorted: Vec<&String> = specialties.iter().collect();
        sorted.sort();
        sorted.dedup();
        let held = match db.get_database_backend() {
            DbBackend::Postgres => Self::lock_postgres(db, &sorted, lease).await?,
            _ => Self::lease_sqlite(db, &sorted, lease).await?,
        };
        Ok(Self {
            held: Some(held),
            lease,
        })
    }

    async fn lock_postgres(
        db: &DatabaseConnection,
        sorted: &[&String],
        lease: Duration,
    ) -> Result<Held, ApiError> {
        let permit = RUN_SLOTS
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        // It holds advisory locks and writes nothing.
        let txn = begin_read(db).await?;
        // A session left idle in this transaction for a whole lease (its
        // process gone without closing the socket) is ended by the server,
        // and its locks with it.
        txn.execute_unprepared(&format!(
            "SET LOCAL idle_in_transaction_session_timeout = {}",
            lease.as_millis()
        ))
        .await?;
        for specialty in sorted {
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_try_advisory_xact_lock($1) AS locked",
                    [lock_key(specialty).into()],
                ))
                .await?;
            let locked: bool = match row {
                Some(row) => row.try_get("", "locked")?,
                None => false,
            };
            if !locked {
                txn.rollback().await?;
                return Err(run_in_progress(specialty));
            }
        }
        Ok(Held::Postgres(txn, permit))
    }

    async fn lease_sqlite(
        db: &DatabaseConnection,
        sorted: &[&String],
        lease: Duration,
    ) -> Result<Held, ApiError> {
        let holder = Uuid::now_v7();
        let txn = begin_write(db).await?;
        // Read once the write lock is ours: waiting for it must not shorten
        // the lease, nor count towards another's lapsing.
        let now = Utc::now().timestamp();
        for specialty in sorted {
            let row = optimisation_lock::Model {
                specialty: (*specialty).clone(),
                holder,
                expires_at: lease_end(now, lease),
            };
            // Takes a free row, or one whose lease lapsed; a live holder's
            // row is left alone (0 rows).
            let claimed = optimisation_lock::Entity::insert(row.into_active_model())
                .on_conflict(
                    OnConflict::column(optimisation_lock::Column::Specialty)
                        .update_columns([
                            optimisation_lock::Column::Holder,
                            optimisation_lock::Column::ExpiresAt,
                        ])
                        .action_and_where(
                            Expr::col((
                                optimisation_lock::Entity,
                                optimisation_lock::Column::ExpiresAt,
                            ))
                            .lt(now),
                        )
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            if claimed == 0 {
                txn.rollback().await?;
                return Err(run_in_progress(specialty));
            }
        }
        txn.commit().await?;
        Ok(Held::Sqlite {
            db: db.clone(),
            holder,
            rows: u64::try_from(sorted.len()).unwrap_or(u64::MAX),
        })
    }

    /// Renews the lock every third of its lease; returns only when a
    /// renewal finds it lost. A renewal SQLite cannot make for the moment
    /// (its write lock busy) is tried again at the next beat, the lease
    /// leaving room for two more.
    async fn keep_alive(&self) -> ApiError {
        let beat = self.lease / 3;
        loop {
            tokio::time::sleep(beat).await;
            match self.renew().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("run lock lost: the run is stopped");
                    return ApiError::Aborted(
                        "the run lost its lock (its lease lapsed or its lock session ended); \
                         retry it"
                            .to_owned(),
                    );
                }
                Err(error) => tracing::warn!(%error, "cannot renew the run lock"),
            }
        }
    }

    /// Whether the lock is still ours, its lease pushed back.
    async fn renew(&self) -> Result<bool, sea_orm::DbErr> {
        match &self.held {
            // Any answer keeps the session from idling out; an error means
            // the transaction, and its locks, are gone or going.
            Some(Held::Postgres(txn, _)) => Ok(txn.execute_unprepared("SELECT 1").await.is_ok()),
            Some(Held::Sqlite { db, holder, rows }) => {
                let txn = begin_write(db).await?;
                let now = Utc::now().timestamp();
                let renewed = optimisation_lock::Entity::update_many()
                    .col_expr(
                        optimisation_lock::Column::ExpiresAt,
                        Expr::value(lease_end(now, self.lease)),
                    )
                    .filter(optimisation_lock::Column::Holder.eq(*holder))
                    .exec(&txn)
                    .await?
                    .rows_affected;
                txn.commit().await?;
                Ok(renewed == *rows)
            }
            None => Ok(false),
        }
    }

    async fn release(mut self) -> Result<(), ApiError> {
        match self.held.take() {
            Some(Held::Postgres(txn, _permit)) => Ok(txn.commit().await?),
            Some(Held::Sqlite { db, holder, .. }) => {
                release_lease(&db, holder).await?;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// When a lease taken or renewed at `now` (seconds) lapses: it is taken
/// over once a later second has begun, so it lasts at least `lease`.
fn lease_end(now: i64, lease: Duration) -> i64 {
    now.saturating_add(i64::try_from(lease.as_secs()).unwrap_or(i64::MAX))
}

async fn release_lease(db: &DatabaseConnection, holder: Uuid) -> Result<(), sea_orm::DbErr> {
    optimisation_lock::Entity::delete_many()
        .filter(optimisation_lock::Column::Holder.eq(holder))
        .exec(db)
        .await
        .map(drop)
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Only a run whose future was dropped (its RPC cancelled) gets here
        // still holding: PostgreSQL's transaction rolls back (and unlocks)
        // as it drops; SQLite's rows are freed in the background, with the
        // lease as the fallback if this cannot run.
        if let Some(Held::Sqlite { db, holder, .. }) = self.held.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = release_lease(&db, holder).await;
            });
        }
    }
}
