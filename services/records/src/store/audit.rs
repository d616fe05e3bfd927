//! The audit trail: one append-only row per read or change of a patient's
//! data, written in the same transaction as the access it records. Nothing
//! here updates or deletes, and the database refuses both (triggers).

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::db;
use medsec_platform::idempotency::{Claimed, RequestKey};
use medsec_platform::pagination::PageRequest;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter,
};
use uuid::Uuid;

use super::IDEMPOTENCY_KEYS;
use super::entities::audit_event::{ActiveModel, Column, Entity as AuditEvents, Model};
use super::patients;

/// Who is acting, and why, as the request says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub actor: String,
    pub role: String,
    pub purpose: String,
    pub trace_id: String,
}

/// One access to record: which resource of which patient was touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub resource: String,
    pub patient_id: Uuid,
}

impl Access {
    pub fn new(resource: impl Into<String>, patient_id: Uuid) -> Self {
        Self {
            resource: resource.into(),
            patient_id,
        }
    }
}

/// A part of a patient's record: what an access to it names.
pub trait Audited {
    fn access(&self) -> Access;
}

/// Appends one event per access, each by `action` (the RPC). Call inside
/// the transaction of the access.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    accesses: impl IntoIterator<Item = Access>,
) -> Result<(), ApiError> {
    let time = Utc::now();
    let rows: Vec<ActiveModel> = accesses
        .into_iter()
        .map(|access| ActiveModel {
            id: Set(Uuid::now_v7()),
            time: Set(time),
            actor: Set(actor.actor.clone()),
            role: Set(actor.role.clone()),
            purpose: Set(actor.purpose.clone()),
            action: Set(action.to_owned()),
            resource: Set(access.resource),
            patient_id: Set(access.patient_id),
            trace_id: Set(actor.trace_id.clone()),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    AuditEvents::insert_many(rows).exec(db).await?;
    Ok(())
}

/// Runs `work` in one write transaction and records in it, by `action`, the
/// accesses it reports: an access is recorded exactly when it happened, and
/// a failed one records nothing.
pub async fn audited<T, A>(
    db: &DatabaseConnection,
    actor: &Actor,
    action: &str,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<(T, A), ApiError>,
) -> Result<T, ApiError>
where
    A: IntoIterator<Item = Access>,
{
    db::write(db, async |txn| {
        let (value, accesses) = work(txn).await?;
        record(txn, actor, action, accesses).await?;
        Ok(value)
    })
    .await
}

/// The accesses of a listing that spans patients: each row of the page
/// served, not the look-ahead row, which the caller never sees.
pub fn served<T: Audited>(page: &PageRequest, rows: &[T]) -> Vec<Access> {
    rows[..page.served(rows.len())]
        .iter()
        .map(Audited::access)
        .collect()
}

/// As [`audited`], for an RPC that touches one part of a patient's record:
/// the one `work` answers with.
pub async fn audited_one<T: Audited>(
    db: &DatabaseConnection,
    actor: &Actor,
    action: &str,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    audited(db, actor, action, async |txn| {
        let value = work(txn).await?;
        let access = value.access();
        Ok((value, [access]))
    })
    .await
}

/// An idempotent create by `action` (the RPC, also the scope of its key):
/// `new` creates the resource with the id it is given, or, when a first call
/// with the same key made it, `replay` finds that one. Either way the access
/// is recorded in the same transaction.
pub async fn create<T: Audited>(
    db: &DatabaseConnection,
    actor: &Actor,
    action: &str,
    key: Option<&RequestKey>,
    replay: impl AsyncFnOnce(&DatabaseTransaction, Uuid) -> Result<T, ApiError>,
    new: impl AsyncFnOnce(&DatabaseTransaction, Uuid) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, action, key, async |txn, claimed| {
            let value = match claimed {
                Claimed::Replay(id) => replay(txn, id).await?,
                Claimed::New(id) => new(txn, id).await?,
            };
            record(txn, actor, action, [value.access()]).await?;
            Ok(value)
        })
        .await
}

/// One page of a patient's events, oldest first. Reading the trail is not
/// itself audited (an audit of the audit would grow with every look).
pub async fn list(
    db: &DatabaseConnection,
    patient_id: Uuid,
    page: &PageRequest,
) -> Result<Vec<Model>, ApiError> {
    patients::find(db, patient_id).await?;
    let query = AuditEvents::find().filter(Column::PatientId.eq(patient_id));
    Ok(page.by_id(query, Column::Id)?.all(db).await?)
}
