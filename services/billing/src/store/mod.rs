//! Billing's storage: sea-orm entities, migrations, and queries over any
//! connection or transaction. Every change that checks a precondition writes
//! first (a guarded UPDATE or an INSERT), so concurrent callers are ordered by
//! the database and SQLite never has to upgrade a read lock.

pub mod budgets;
pub mod charges;
mod counters;
pub mod entities;
pub mod invoices;
pub mod migration;
pub mod price_list;
pub mod reactions;

pub use medsec_platform::idempotency::RequestKey;
pub use migration::Migrator;
/// The handle the API holds: every query goes through this module.
pub use sea_orm::DatabaseConnection;

use medsec_platform::ApiError;
use medsec_platform::idempotency::IdempotencyKeys;
use sea_orm::{ConnectionTrait, EntityTrait, PrimaryKeyTrait};
use uuid::Uuid;

/// Claimed `request_id`s of BillingService's idempotent RPCs.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys = IdempotencyKeys::new("billing_idempotency_keys");

/// The row of `E` whose id is `id`, or NOT_FOUND naming it a `resource`.
async fn row<E>(
    db: &impl ConnectionTrait,
    resource: &'static str,
    id: Uuid,
) -> Result<E::Model, ApiError>
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
{
    E::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(resource, id.to_string()))
}
