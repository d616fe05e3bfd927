//! The test catalogue and specimens: each transition is one guarded update
//! (from the states it may follow, under an optional etag) plus an event
//! row, in one transaction.

use chrono::{DateTime, Duration, Utc};
use medsec_platform::ApiError;
use medsec_platform::db::begin_write;
use medsec_platform::idempotency::RequestKey;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use uuid::Uuid;

use super::IDEMPOTENCY_KEYS;
use super::audit::{self, Access, Actor};
use super::patients;
use crate::domain::specimens::SpecimenState;

pub use super::entities::test_type;

use super::entities::specimen;

use super::entities::specimen_event as event;

use specimen::{Column, Entity as Specimens, Model};

/// A specimen with its journey so far.
#[derive(Debug, Clone)]
pub struct SpecimenRecord {
    pub specimen: Model,
    pub events: Vec<event::Model>,
}

pub fn resource(id: Uuid) -> String {
    format!("specimens/{id}")
}

/// Adds a test to the catalogue. A retry with the same key returns the test
/// the first call added.
pub async fn create_test_type(
    db: &DatabaseConnection,
    row: test_type::Model,
    key: Option<RequestKey>,
) -> Result<test_type::Model, ApiError> {
    let creation = IDEMPOTENCY_KEYS
        .begin_create(db, "CreateTestType", key.as_ref())
        .await?;
    let txn = creation.txn;
    if creation.replay_of.is_some() {
        // The key was claimed with the code as its resource: find it by code.
        let existing = find_test_type(&txn, &row.code).await?;
        txn.commit().await?;
        return Ok(existing);
    }
    let code = row.code.clone();
    let active = test_type::ActiveModel {
        code: Set(row.code),
        name: Set(row.name),
        specimen_type: Set(row.specimen_type),
        turnaround_hours: Set(row.turnaround_hours),
        create_time: Set(Utc::now()),
    };
    let inserted = match active.insert(&txn).await {
        Ok(inserted) => inserted,
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(ApiError::AlreadyExists {
                message: format!("test type {code} already exists"),
                resource: "test_type",
                existing_id: code,
            });
        }
        Err(error) => return Err(ApiError::internal(error)),
    };
    txn.commit().await?;
    Ok(inserted)
}

pub async fn list_test_types(
    db: &impl ConnectionTrait,
    page: &PageRequest,
) -> Result<Vec<test_type::Model>, ApiError> {
    let mut query = test_type::Entity::find();
    if let Some(after) = &page.after {
        query = query.filter(test_type::Column::Code.gt(after.as_str()));
    }
    Ok(query
        .order_by_asc(test_type::Column::Code)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

/// Requests a test for a patient.
pub async fn request(
    db: &DatabaseConnection,
    patient_id: Uuid,
    test_code: &str,
    notes: String,
    key: Option<RequestKey>,
    actor: &Actor,
) -> Result<SpecimenRecord, ApiError> {
    let creation = IDEMPOTENCY_KEYS
        .begin_create(db, "RequestSpecimen", key.as_ref())
        .await?;
    let (txn, id) = (creation.txn, creation.id);
    if let Some(existing) = creation.replay_of {
        let record = load(&txn, existing).await?;
        let access = Access::new(
            "RequestSpecimen",
            resource(existing),
            record.specimen.patient_id,
        );
        audit::record(&txn, actor, [access]).await?;
        txn.commit().await?;
        return Ok(record);
    }
    patients::require_active(&txn, patient_id).await?;
    find_test_type(&txn, test_code).await?;
    let now = Utc::now();
    specimen::ActiveModel {
        id: Set(id),
        patient_id: Set(patient_id),
        test_code: Set(test_code.to_owned()),
        state: Set(SpecimenState::Requested.as_str().to_owned()),
        notes: Set(notes),
        courier: Set(None),
        lab: Set(None),
        tracking_reference: Set(None),
        result_summary: Set(None),
        abnormal: Set(false),
        result_document_id: Set(None),
        rejection_reason: Set(None),
        dispatch_time: Set(None),
        due_time: Set(None),
        create_time: Set(now),
        update_time: Set(now),
        revision: Set(1),
    }
    .insert(&txn)
    .await?;
    add_event(
        &txn,
        id,
        SpecimenState::Requested,
        now,
        actor,
        String::new(),
    )
    .await?;
    audit::record(
        &txn,
        actor,
        [Access::new("RequestSpecimen", resource(id), patient_id)],
    )
    .await?;
    let record = load(&txn, id).await?;
    txn.commit().await?;
    Ok(record)
}

/// What a transition records besides the new state.
#[derive(Debug, Clone, Default)]
pub struct TransitionData {
    pub courier: Option<String>,
    pub lab: Option<String>,
    pub tracking_reference: Option<String>,
    pub result_summary: Option<String>,
    pub abnormal: Option<bool>,
    pub result_document_id: Option<Uuid>,
    pub rejection_reason: Option<String>,
    /// For the event log, e.g. "courier=… lab=…".
    pub details: String,
}

/// Moves a specimen into `to`, if its current state allows it.
pub async fn transition(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    to: SpecimenState,
    data: TransitionData,
    action: &'static str,
    actor: &Actor,
) -> Result<SpecimenRecord, ApiError> {
    let txn = begin_write(db).await?;
    let now = Utc::now();
    let current = find(&txn, id).await?;
    if let Some(document_id) = data.result_document_id {
        let document = super::documents::find(&txn, document_id)
            .await
            .map_err(|_| ApiError::invalid("document_id", "is not a document on file"))?;
        if document.patient_id != current.patient_id {
            return Err(ApiError::invalid(
                "document_id",
                "belongs to another patient",
            ));
        }
    }
    let mut update = Specimens::update_many()
        .col_expr(Column::State, Expr::value(to.as_str()))
        .col_expr(Column::UpdateTime, Expr::value(now))
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .filter(Column::Id.eq(id))
        .filter(Column::State.is_in(to.reachable_from().iter().map(|s| s.as_str())));
    if let Some(revision) = expected_revision {
        update = update.filter(Column::Revision.eq(revision));
    }
    let mut changes: Vec<(Column, SimpleExpr)> = Vec::new();
    if to == SpecimenState::Dispatched {
        let test = find_test_type(&txn, &current.test_code).await?;
        let turnaround = Duration::hours(i64::from(test.turnaround_hours));
        changes.push((Column::DispatchTime, Expr::value(now)));
        changes.push((Column::DueTime, Expr::value(now + turnaround)));
    }
    for (column, value) in [
        (Column::Courier, data.courier),
        (Column::Lab, data.lab),
        (Column::TrackingReference, data.tracking_reference),
        (Column::ResultSummary, data.result_summary),
        (Column::RejectionReason, data.rejection_reason),
    ] {
        if let Some(value) = value {
            changes.push((column, Expr::value(value)));
        }
    }
    if let Some(abnormal) = data.abnormal {
        changes.push((Column::Abnormal, Expr::value(abnormal)));
    }
    if let Some(document_id) = data.result_document_id {
        changes.push((Column::ResultDocumentId, Expr::value(document_id)));
    }
    for (column, value) in changes {
        update = update.col_expr(column, value);
    }
    if update.exec(&txn).await?.rows_affected == 0 {
        let current = find(&txn, id).await?;
        let state = SpecimenState::from_stored(&current.state);
        return Err(match state {
            Some(state) if !to.reachable_from().contains(&state) => {
                ApiError::wrong_state(resource(id), state.as_str(), to.action())
            }
            _ => ApiError::stale_etag(resource(id)),
        });
    }
    add_event(&txn, id, to, now, actor, data.details).await?;
    audit::record(
        &txn,
        actor,
        [Access::new(action, resource(id), current.patient_id)],
    )
    .await?;
    let record = load(&txn, id).await?;
    txn.commit().await?;
    Ok(record)
}

pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<SpecimenRecord, ApiError> {
    let txn = begin_write(db).await?;
    let record = load(&txn, id).await?;
    audit::record(
        &txn,
        actor,
        [Access::new(
            "GetSpecimen",
            resource(id),
            record.specimen.patient_id,
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(record)
}

/// One page of a patient's specimens, oldest request first; audited once.
pub async fn list_for_patient(
    db: &DatabaseConnection,
    patient_id: Uuid,
    state: Option<SpecimenState>,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<SpecimenRecord>, ApiError> {
    let txn = begin_write(db).await?;
    patients::find(&txn, patient_id).await?;
    let mut query = Specimens::find().filter(Column::PatientId.eq(patient_id));
    if let Some(state) = state {
        query = query.filter(Column::State.eq(state.as_str()));
    }
    let rows = page.by_id(query, Column::Id)?.all(&txn).await?;
    let records = with_events(&txn, rows).await?;
    let listing = format!("{}/specimens", patients::resource(patient_id));
    audit::record(
        &txn,
        actor,
        [Access::new("ListSpecimens", listing, patient_id)],
    )
    .await?;
    txn.commit().await?;
    Ok(records)
}

/// Specimens with the lab past their due time at `as_of`, oldest dispatch
/// first. The page key is "dispatch-time|id". Each specimen served is audited
/// against its patient.
pub async fn list_overdue(
    db: &DatabaseConnection,
    as_of: DateTime<Utc>,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<SpecimenRecord>, ApiError> {
    let txn = begin_write(db).await?;
    let with_lab = [SpecimenState::Dispatched, SpecimenState::Received].map(SpecimenState::as_str);
    let mut query = Specimens::find()
        .filter(Column::State.is_in(with_lab))
        .filter(Column::DueTime.lt(as_of));
    if let Some(after) = &page.after {
        let (time, id) = parse_overdue_key(after)
            .ok_or_else(|| ApiError::invalid("page_token", "is not a token this API issued"))?;
        query = query.filter(
            Condition::any().add(Column::DispatchTime.gt(time)).add(
                Condition::all()
                    .add(Column::DispatchTime.eq(time))
                    .add(Column::Id.gt(id)),
            ),
        );
    }
    let rows = query
        .order_by_asc(Column::DispatchTime)
        .order_by_asc(Column::Id)
        .limit(page.fetch_limit())
        .all(&txn)
        .await?;
    let served = rows
        .len()
        .min(usize::try_from(page.size).unwrap_or(usize::MAX));
    audit::record(
        &txn,
        actor,
        rows[..served]
            .iter()
            .map(|row| Access::new("ListOverdueSpecimens", resource(row.id), row.patient_id)),
    )
    .await?;
    let records = with_events(&txn, rows).await?;
    txn.commit().await?;
    Ok(records)
}

/// The page key of an overdue specimen.
pub fn overdue_key(specimen: &Model) -> String {
    let time = specimen
        .dispatch_time
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    format!("{time}|{}", specimen.id)
}

fn parse_overdue_key(key: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (time, id) = key.split_once('|')?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    Some((time, Uuid::parse_str(id).ok()?))
}

async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    Specimens::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("specimen", id.to_string()))
}

async fn find_test_type(
    db: &impl ConnectionTrait,
    code: &str,
) -> Result<test_type::Model, ApiError> {
    test_type::Entity::find_by_id(code.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::invalid("test_code", format!("{code} is not in the test catalogue"))
        })
}

async fn load(db: &impl ConnectionTrait, id: Uuid) -> Result<SpecimenRecord, ApiError> {
    let specimen = find(db, id).await?;
    let mut records = with_events(db, vec![specimen]).await?;
    records
        .pop()
        .ok_or_else(|| ApiError::internal("specimen vanished while loading"))
}

async fn with_events(
    db: &impl ConnectionTrait,
    specimens: Vec<Model>,
) -> Result<Vec<SpecimenRecord>, ApiError> {
    let ids: Vec<Uuid> = specimens.iter().map(|s| s.id).collect();
    let events = event::Entity::find()
        .filter(event::Column::SpecimenId.is_in(ids))
        .order_by_asc(event::Column::Id)
        .all(db)
        .await?;
    Ok(specimens
        .into_iter()
        .map(|specimen| SpecimenRecord {
            events: events
                .iter()
                .filter(|e| e.specimen_id == specimen.id)
                .cloned()
                .collect(),
            specimen,
        })
        .collect())
}

async fn add_event(
    db: &impl ConnectionTrait,
    specimen_id: Uuid,
    state: SpecimenState,
    time: DateTime<Utc>,
    actor: &Actor,
    details: String,
) -> Result<(), ApiError> {
    event::ActiveModel {
        id: Set(Uuid::now_v7()),
        specimen_id: Set(specimen_id),
        state: Set(state.as_str().to_owned()),
        time: Set(time),
        actor: Set(actor.actor.clone()),
        details: Set(details),
    }
    .insert(db)
    .await?;
    Ok(())
}
