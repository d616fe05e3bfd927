//! The suite's one audit trail. Every read or change of patient-linked data,
//! in every service, appends an event in the same transaction as the
//! access ([`record`] and the helpers around it); every call on patient
//! data that the authorisation layer refused, or that failed, appends one
//! in a transaction of its own ([`record_call`]). Reads that change nothing
//! ([`read`], [`read_one`]) hand their events to a group commit and answer
//! once those are durable. An event names the
//! verified subject, roles, purpose (break-glass flagged, with its reason),
//! the service and RPC, the outcome, the resource and patient, a search's
//! filter hash and the trace id.
//!
//! Events form hash chains that cannot be rewritten unnoticed: each has a
//! seq in its chain, the previous event's hash, and its own hash over both
//! and every field ([`chain`]); [`verify()`] recomputes them. Chains are
//! sharded — one per service and patient, one per service, method and hour
//! for events naming no patient — so appending locks only its own chains'
//! heads and no single row serialises the suite's audited reads (ADR 0008).
//! The database refuses UPDATE, DELETE and TRUNCATE of events (triggers,
//! and on PostgreSQL the runtime role's privileges, [`grant_runtime_role`]).

mod actor;
mod append;
pub mod chain;
pub mod entities;
mod journal;
pub mod migration;
mod privileges;
mod record;
pub mod verify;

pub use actor::{ANONYMOUS, Access, Actor, Audited, Outcome};
pub use append::{Event, append};
pub(crate) use chain::hex;
pub use journal::{MOST_PER_BATCH, read, read_one};
pub use privileges::{GrantError, grant_runtime_role};
pub use record::{audited, audited_one, create, record, record_call, recorded, served};
pub use verify::{Report, verify};

use sea_orm::{ColumnTrait as _, ConnectionTrait, DatabaseConnection, DbErr, QueryFilter as _};
use uuid::Uuid;

use crate::error::ApiError;
use crate::pagination::PageRequest;

/// Applies the trail's pending migrations (idempotent: every service runs
/// it before its own).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    crate::db::migrate::<migration::Migrator>(db).await
}

/// One page of the events naming patient `patient_id`, in every service,
/// oldest first.
pub async fn events_of_patient(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    page: &PageRequest,
) -> Result<Vec<entities::event::Model>, ApiError> {
    use entities::event::{Column, Entity};
    use sea_orm::EntityTrait as _;
    let query = Entity::find().filter(Column::PatientId.eq(patient_id));
    Ok(page.by_id(query, Column::Id)?.all(conn).await?)
}
