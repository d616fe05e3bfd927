//! Storage of staff, diaries, appointments, the waiting list and enquiries:
//! sea-orm entities, migrations, and queries over any connection or
//! transaction; they take the domain's `New…` values and make the rows.
//!
//! Every change that checks a rule writes first inside its transaction (a
//! guarded UPDATE or the idempotency claim): PostgreSQL then holds the row
//! lock until commit, so concurrent callers are ordered by the database, and
//! SQLite takes its write lock at once (`begin_write`). Database errors
//! reach clients through `?`, classified by the platform.
//!
//! Every read or change of a patient's referral, appointment, enquiry or
//! allocation, and of a diary showing appointments, appends its events to
//! the suite's audit trail in the same transaction (`audited` names what
//! each record's access is).

pub mod absences;
pub mod appointments;
mod audited;
pub mod diary;
pub mod enquiries;
pub mod entities;
pub(crate) mod events;
pub mod migration;
pub mod optimise;
pub mod reactions;
pub mod referrals;
pub mod staff;

pub use migration::Migrator;
/// The database a service's handlers hold.
pub use sea_orm::DatabaseConnection;

use medsec_platform::ApiError;
use medsec_platform::idempotency::{Claimed, IdempotencyKeys, RequestKey};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IntoActiveModel,
    ModelTrait, PrimaryKeyTrait,
};
use uuid::Uuid;

/// Claimed `request_id`s of SchedulingService's Create RPCs.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys = IdempotencyKeys::new("scheduling_idempotency_keys");

/// The row `id` of entity `E`, or NOT_FOUND naming it as `resource`.
pub async fn get_row<E>(
    conn: &impl ConnectionTrait,
    resource: &'static str,
    id: Uuid,
) -> Result<E::Model, ApiError>
where
    E: EntityTrait,
    Uuid: Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
{
    E::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(resource, id.to_string()))
}

/// Inserts `row` as it stands.
pub async fn insert<M>(conn: &impl ConnectionTrait, row: M) -> Result<(), ApiError>
where
    M: ModelTrait + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel>,
    <M::Entity as EntityTrait>::ActiveModel: ActiveModelTrait<Entity = M::Entity> + Send,
{
    <M::Entity as EntityTrait>::insert(row.into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Creates one row of `E` (named `resource`) idempotently on `key` in
/// `scope` (the RPC's name). For a new resource, `check` runs first in the
/// creating transaction (the rows it names exist and fit), then the row
/// `row(id)` is inserted; a replay creates nothing. Either way the answer is
/// the stored row.
pub async fn create_row<E>(
    db: &DatabaseConnection,
    scope: &str,
    key: Option<&RequestKey>,
    resource: &'static str,
    check: impl AsyncFnOnce(&DatabaseTransaction) -> Result<(), ApiError>,
    row: impl FnOnce(Uuid) -> E::Model,
) -> Result<E::Model, ApiError>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    Uuid: Into<<E::PrimaryKey as PrimaryKeyTrait>::ValueType>,
{
    IDEMPOTENCY_KEYS
        .create(db, scope, key, async |txn, claimed| {
            if let Claimed::New(id) = claimed {
                check(txn).await?;
                insert(txn, row(id)).await?;
            }
            get_row::<E>(txn, resource, claimed.id()).await
        })
        .await
}
