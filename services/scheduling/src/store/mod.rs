//! Storage of diaries, appointments, the waiting list and enquiries:
//! sea-orm entities, migrations, and queries over any connection or
//! transaction.
//!
//! Every change that checks a rule writes first inside its transaction (a
//! guarded UPDATE or the idempotency claim): PostgreSQL then holds the row
//! lock until commit, so concurrent callers are ordered by the database, and
//! SQLite takes its write lock at once instead of failing to upgrade a read
//! lock.

pub mod appointments;
pub mod diary;
pub mod enquiries;
pub mod entities;
pub mod migration;
pub mod optimise;
pub mod referrals;
pub mod staff;

pub use migration::Migrator;

use medsec_platform::ApiError;
use medsec_platform::idempotency::{Claim, IdempotencyKeys};
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait as _, QueryFilter as _, SqlErr, TransactionTrait as _,
};
use uuid::Uuid;

use entities::staff as staff_table;

/// Claimed `request_id`s of SchedulingService's Create RPCs.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys = IdempotencyKeys::new("scheduling_idempotency_keys");

pub use medsec_platform::idempotency::RequestKey;

/// What a create found: made now, or made by an earlier call with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New(Uuid),
    Replay(Uuid),
}

impl Created {
    pub fn id(self) -> Uuid {
        match self {
            Self::New(id) | Self::Replay(id) => id,
        }
    }
}

/// Runs `insert` in a transaction that first claims `key` for the resource
/// `id`. A replayed key creates nothing and names the first call's resource.
pub async fn create_once(
    db: &DatabaseConnection,
    scope: &str,
    key: Option<&RequestKey>,
    id: Uuid,
    insert: impl AsyncFnOnce(&DatabaseTransaction) -> Result<(), ApiError>,
) -> Result<Created, ApiError> {
    let txn = db.begin().await?;
    if let Some(created) = claim(&txn, scope, key, id).await? {
        txn.rollback().await?;
        return Ok(created);
    }
    insert(&txn).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(Created::New(id))
}

/// Claims `key` for `id` in `txn`; `Some` when the key was used before.
pub async fn claim(
    txn: &DatabaseTransaction,
    scope: &str,
    key: Option<&RequestKey>,
    id: Uuid,
) -> Result<Option<Created>, ApiError> {
    let Some(key) = key else {
        return Ok(None);
    };
    match IDEMPOTENCY_KEYS
        .claim(txn, scope, &key.request_id, &key.request, &id.to_string())
        .await?
    {
        Claim::New => Ok(None),
        Claim::Replay { resource_id } => {
            let id = Uuid::parse_str(&resource_id).map_err(ApiError::internal)?;
            Ok(Some(Created::Replay(id)))
        }
    }
}

/// Maps a database error: a lost race (deadlock, serialisation failure, a
/// referenced row removed meanwhile) is ABORTED so the client retries;
/// anything else is internal.
pub fn db_error(error: DbErr) -> ApiError {
    let text = error.to_string();
    if matches!(
        error.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    ) || text.contains("deadlock detected")
        || text.contains("could not serialize")
    {
        return ApiError::Aborted("a concurrent change got in the way; retry".to_owned());
    }
    ApiError::internal(error)
}

/// The id after which a page ordered by id resumes.
pub fn after_id(page: &PageRequest) -> Result<Option<Uuid>, ApiError> {
    page.after
        .as_deref()
        .map(|after| {
            Uuid::parse_str(after)
                .map_err(|_| ApiError::invalid("page_token", "is not a token this API issued"))
        })
        .transpose()
}

/// The key of a page ordered by (start instant, id).
pub fn start_key(start_at: i64, id: Uuid) -> String {
    format!("{start_at}/{id}")
}

/// Resumes a page ordered by (`start`, `id`) after the token's key.
pub fn after_start(
    page: &PageRequest,
    start: impl sea_orm::ColumnTrait,
    id: impl sea_orm::ColumnTrait,
) -> Result<Option<Condition>, ApiError> {
    let Some(after) = page.after.as_deref() else {
        return Ok(None);
    };
    let bad = || ApiError::invalid("page_token", "is not a token this API issued");
    let (at, last) = after.split_once('/').ok_or_else(bad)?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let last = Uuid::parse_str(last).map_err(|_| bad())?;
    Ok(Some(
        Condition::any()
            .add(start.gt(at))
            .add(Condition::all().add(start.eq(at)).add(id.gt(last))),
    ))
}

/// A list stored between commas (",a,b,"), so `LIKE '%,a,%'` finds members.
pub fn join_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut joined = String::from(",");
    for item in items {
        joined.push_str(item);
        joined.push(',');
    }
    joined
}

pub fn split_list(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Serialises every change to a clinician's diary (slots, absences) by
/// bumping their staff row first: two concurrent changes cannot both pass
/// the overlap check.
pub async fn lock_clinician(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), ApiError> {
    let locked = staff_table::Entity::update_many()
        .col_expr(
            staff_table::Column::Revision,
            Expr::col(staff_table::Column::Revision).add(1),
        )
        .filter(staff_table::Column::Id.eq(id))
        .filter(staff_table::Column::Role.eq(crate::domain::Role::Clinician.as_str()))
        .exec(conn)
        .await
        .map_err(db_error)?
        .rows_affected;
    if locked == 0 {
        return Err(ApiError::not_found("clinician", id.to_string()));
    }
    Ok(())
}
