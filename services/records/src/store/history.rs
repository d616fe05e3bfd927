//! Medical history entries: the typed details are stored as JSON beside the
//! columns that are queried (patient, kind).

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::idempotency::RequestKey;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use medsec_platform::audit::{self, Access, Actor, Audited};

use super::IDEMPOTENCY_KEYS;
use super::entities::history_entry::{ActiveModel, Column, Entity as Entries, Model};
use super::entities::patient;
use super::patients;
use crate::domain::history::{HistoryDetails, HistoryKind};

/// A stored entry with its details decoded.
#[derive(Debug, Clone)]
pub struct HistoryRecord {
    pub row: Model,
    pub details: HistoryDetails,
}

impl Audited for HistoryRecord {
    fn access(&self) -> Access {
        Access::patient(resource(self.row.id), self.row.patient_id)
    }
}

pub fn resource(id: Uuid) -> String {
    format!("history/{id}")
}

fn decode(row: Model) -> Result<HistoryRecord, ApiError> {
    let details = serde_json::from_str(&row.details).map_err(ApiError::internal)?;
    Ok(HistoryRecord { row, details })
}

fn encode(details: &HistoryDetails) -> Result<String, ApiError> {
    serde_json::to_string(details).map_err(ApiError::internal)
}

async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<HistoryRecord, ApiError> {
    let row = Entries::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("history_entry", id.to_string()))?;
    decode(row)
}

pub async fn create(
    db: &DatabaseConnection,
    patient_id: Uuid,
    details: HistoryDetails,
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<HistoryRecord, ApiError> {
    audit::create(
        db,
        &IDEMPOTENCY_KEYS,
        "CreateHistoryEntry",
        actor,
        key,
        find,
        async |txn, id| {
            patients::require_active(txn, patient_id).await?;
            let now = Utc::now();
            let row = ActiveModel {
                id: Set(id),
                patient_id: Set(patient_id),
                kind: Set(details.kind().as_str().to_owned()),
                details: Set(encode(&details)?),
                create_time: Set(now),
                update_time: Set(now),
                revision: Set(1),
            }
            .insert(txn)
            .await?;
            Ok(HistoryRecord { row, details })
        },
    )
    .await
}

/// Changes an entry with `change`, which sees the current details and
/// returns the new ones (or what is wrong with the request).
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    change: impl FnOnce(&HistoryDetails) -> Result<HistoryDetails, ApiError>,
    actor: &Actor,
) -> Result<HistoryRecord, ApiError> {
    audit::audited_one(db, actor, async |txn| {
        let current = find(txn, id).await?;
        if expected_revision.is_some_and(|revision| revision != current.row.revision) {
            return Err(ApiError::stale_etag(resource(id)));
        }
        patients::require_active(txn, current.row.patient_id).await?;
        let details = change(&current.details)?;
        // The write lock is held (begin_write) on SQLite; on PostgreSQL the
        // revision guard makes a concurrent change lose cleanly.
        let changed = Entries::update_many()
            .col_expr(Column::Details, Expr::value(encode(&details)?))
            .col_expr(Column::UpdateTime, Expr::value(Utc::now()))
            .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
            .filter(Column::Id.eq(id))
            .filter(Column::Revision.eq(current.row.revision))
            .exec(txn)
            .await?;
        if changed.rows_affected == 0 {
            return Err(ApiError::stale_etag(resource(id)));
        }
        find(txn, id).await
    })
    .await
}

pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<HistoryRecord, ApiError> {
    audit::read_one(db, actor, async |txn| find(txn, id).await).await
}

/// One page of a patient's entries, oldest first; audited once.
pub async fn list(
    db: &DatabaseConnection,
    patient_id: Uuid,
    kind: Option<HistoryKind>,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<HistoryRecord>, ApiError> {
    let rows = audit::read(db, actor, async |txn| {
        patients::find(txn, patient_id).await?;
        let mut query = Entries::find().filter(Column::PatientId.eq(patient_id));
        if let Some(kind) = kind {
            query = query.filter(Column::Kind.eq(kind.as_str()));
        }
        let rows = page.by_id(query, Column::Id)?.all(txn).await?;
        let listing = format!("{}/history", patients::resource(patient_id));
        Ok((rows, [Access::patient(listing, patient_id)]))
    })
    .await?;
    rows.into_iter().map(decode).collect()
}

/// The patient and every history entry, read together and audited once.
pub async fn summary(
    db: &DatabaseConnection,
    patient_id: Uuid,
    actor: &Actor,
) -> Result<(patient::Model, Vec<HistoryRecord>), ApiError> {
    let (patient, rows) = audit::read(db, actor, async |txn| {
        let patient = patients::find(txn, patient_id).await?;
        let rows = Entries::find()
            .filter(Column::PatientId.eq(patient_id))
            .order_by_asc(Column::Id)
            .all(txn)
            .await?;
        let access = Access::patient(patients::resource(patient_id), patient_id);
        Ok(((patient, rows), [access]))
    })
    .await?;
    let records = rows.into_iter().map(decode).collect::<Result<_, _>>()?;
    Ok((patient, records))
}
