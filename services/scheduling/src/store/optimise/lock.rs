//! The run lock: one optimisation per specialty at a time, held for the
//! whole of a run and released on every path by [`RunLock::hold`].

use std::sync::{Arc, LazyLock};

use chrono::Utc;
use medsec_platform::db::{begin_read, begin_write};
use medsec_platform::{ApiError, PreconditionKind};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait as _, IntoActiveModel as _, QueryFilter as _, Statement,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::store::entities::optimisation_lock;

/// How long an SQLite lock row outlives a run that died without releasing it.
const LEASE_SECONDS: i64 = 600;

/// At most this many runs hold a PostgreSQL lock connection at once in one
/// process. A run holds its lock's connection and uses a second for its
/// queries, so with the default pool of 10 this leaves connections for every
/// other RPC; further runs wait their turn instead of starving the pool.
const MAX_CONCURRENT_RUNS: usize = 4;

static RUN_SLOTS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(MAX_CONCURRENT_RUNS)));

/// The advisory-lock key of a specialty: FNV-1a of a namespaced name, so
/// keys do not collide with the migration lock or other users.
pub fn lock_key(specialty: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "medsec.scheduling.optimise/"
        .bytes()
        .chain(specialty.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
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
/// only holds locks, so other RPCs are not blocked, and a crashed run's
/// locks go with its connection). SQLite has no advisory locks and a long
/// write transaction would block every booking, so there a short
/// transaction claims one row per specialty with a lease, deleted on
/// release (a crashed run's rows lapse after the lease).
///
/// The lock exists only inside [`RunLock::hold`], which releases it
/// whatever the run returns; dropping it (a run's future dropped when its
/// RPC is cancelled) releases it too.
#[derive(Debug)]
pub struct RunLock {
    held: Option<Held>,
}

#[derive(Debug)]
enum Held {
    Postgres(DatabaseTransaction, OwnedSemaphorePermit),
    Sqlite {
        db: DatabaseConnection,
        holder: Uuid,
    },
}

impl RunLock {
    /// Runs `work` holding every specialty's lock, and releases them
    /// whatever it returns. Takes every lock or none: FAILED_PRECONDITION
    /// naming the first specialty (in name order) another run holds, and
    /// `work` does not run.
    pub async fn hold<T>(
        db: &DatabaseConnection,
        specialties: &[String],
        work: impl AsyncFnOnce() -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let lock = Self::acquire(db, specialties).await?;
        let outcome = work().await;
        lock.release().await?;
        outcome
    }

    async fn acquire(db: &DatabaseConnection, specialties: &[String]) -> Result<Self, ApiError> {
        let mut sorted: Vec<&String> = specialties.iter().collect();
        sorted.sort();
        sorted.dedup();
        let held = match db.get_database_backend() {
            DbBackend::Postgres => Self::lock_postgres(db, &sorted).await?,
            _ => Self::lease_sqlite(db, &sorted).await?,
        };
        Ok(Self { held: Some(held) })
    }

    async fn lock_postgres(db: &DatabaseConnection, sorted: &[&String]) -> Result<Held, ApiError> {
        let permit = RUN_SLOTS
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        // It holds advisory locks and writes nothing.
        let txn = begin_read(db).await?;
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

    async fn lease_sqlite(db: &DatabaseConnection, sorted: &[&String]) -> Result<Held, ApiError> {
        let holder = Uuid::now_v7();
        let now = Utc::now().timestamp();
        let txn = begin_write(db).await?;
        for specialty in sorted {
            let row = optimisation_lock::Model {
                specialty: (*specialty).clone(),
                holder,
                expires_at: now + LEASE_SECONDS,
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
        })
    }

    async fn release(mut self) -> Result<(), ApiError> {
        match self.held.take() {
            Some(Held::Postgres(txn, _permit)) => Ok(txn.commit().await?),
            Some(Held::Sqlite { db, holder }) => {
                release_lease(&db, holder).await?;
                Ok(())
            }
            None => Ok(()),
        }
    }
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
        if let Some(Held::Sqlite { db, holder }) = self.held.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = release_lease(&db, holder).await;
            });
        }
    }
}
