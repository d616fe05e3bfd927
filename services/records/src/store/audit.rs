//! The audit trail: one append-only row per read or change of a patient's
//! data, written in the same transaction as the access it records. Nothing
//! here updates or deletes, and the database refuses both (triggers).

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::audit_event as event;

use event::{ActiveModel, Column, Entity as AuditEvents, Model};

/// Who is acting, and why, as the request says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub actor: String,
    pub role: String,
    pub purpose: String,
    pub trace_id: String,
}

/// One access to record: which RPC touched which resource of which patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub action: &'static str,
    pub resource: String,
    pub patient_id: Uuid,
}

impl Access {
    pub fn new(action: &'static str, resource: impl Into<String>, patient_id: Uuid) -> Self {
        Self {
            action,
            resource: resource.into(),
            patient_id,
        }
    }
}

/// Appends one event per access. Call inside the transaction of the access.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    accesses: impl IntoIterator<Item = Access>,
) -> Result<(), DbErr> {
    let time = Utc::now();
    let rows: Vec<ActiveModel> = accesses
        .into_iter()
        .map(|access| ActiveModel {
            id: Set(Uuid::now_v7()),
            time: Set(time),
            actor: Set(actor.actor.clone()),
            role: Set(actor.role.clone()),
            purpose: Set(actor.purpose.clone()),
            action: Set(access.action.to_owned()),
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

/// One page of a patient's events, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    patient_id: Uuid,
    page: &PageRequest,
) -> Result<Vec<Model>, ApiError> {
    let query = AuditEvents::find().filter(Column::PatientId.eq(patient_id));
    Ok(page.by_id(query, Column::Id)?.all(db).await?)
}
