//! Migration 3: records' events move onto the suite's trail. Every row of
//! `audit_events` is appended to the platform's `audit_trail` (migrated
//! before this one by `medsec_records::migrate`) with the same id, time and
//! fields, patient by patient and oldest first, so each patient's chain
//! starts with its history and its hashes are computed as any event's.
//! `audit_events` stays, append-only, as it was; nothing writes to it now.

use medsec_platform::audit::{Event, Outcome, append};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{
    ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};

use crate::store::entities::audit_event::{Column, Entity as AuditEvents, Model};

/// Old events copied per batch.
const BATCH: u64 = 1000;

#[derive(Debug)]
pub(super) struct CopyAuditEventsToTrail;

impl MigrationName for CopyAuditEventsToTrail {
    fn name(&self) -> &str {
        "m20261210_000003_copy_audit_events_to_trail"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CopyAuditEventsToTrail {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let mut after: Option<(uuid::Uuid, uuid::Uuid)> = None;
        loop {
            let mut query = AuditEvents::find();
            if let Some((patient_id, id)) = after {
                query = query.filter(
                    Condition::any().add(Column::PatientId.gt(patient_id)).add(
                        Condition::all()
                            .add(Column::PatientId.eq(patient_id))
                            .add(Column::Id.gt(id)),
                    ),
                );
            }
            let rows = query
                .order_by_asc(Column::PatientId)
                .order_by_asc(Column::Id)
                .limit(BATCH)
                .all(db)
                .await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = Some((last.patient_id, last.id));
            let full = rows.len() as u64 == BATCH;
            append(db, rows.into_iter().map(event).collect()).await?;
            if !full {
                return Ok(());
            }
        }
    }
}

/// An old event as the trail keeps it. Break-glass purposes were written
/// `break_glass: <reason>`; the trail keeps the reason apart.
fn event(row: Model) -> Event {
    let (purpose, reason) = match row.purpose.split_once(": ") {
        Some(("break_glass", reason)) => ("break_glass".to_owned(), Some(reason.to_owned())),
        _ => (row.purpose, None),
    };
    Event {
        id: row.id,
        time: row.time,
        service: "records".to_owned(),
        method: row.action,
        subject: row.actor,
        roles: row.role,
        purpose,
        reason,
        outcome: Outcome::Ok,
        resource: row.resource,
        patient_id: Some(row.patient_id),
        filter_hash: None,
        trace_id: row.trace_id,
    }
}
