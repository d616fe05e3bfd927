//! The test catalogue and specimens: each step of a specimen's journey is
//! one guarded update (from the states it may follow, under an optional
//! etag) plus an event row, in one transaction.

use chrono::{DateTime, Duration, Utc};
use medsec_platform::idempotency::{Claimed, RequestKey};
use medsec_platform::pagination::PageRequest;
use medsec_platform::{ApiError, db};
use sea_orm::sea_query::{Expr, ExprTrait as _, LockBehavior, LockType, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, SqlErr,
};
use uuid::Uuid;

use super::IDEMPOTENCY_KEYS;
use super::entities::specimen::{ActiveModel, Column, Entity as Specimens, Model};
use super::entities::{specimen_event, test_type};
use super::{documents, events, patients};
use crate::domain::specimens::{NewSpecimen, NewTestType, SpecimenState, Step};
use medsec_platform::audit::{self, Access, Actor, Audited};

/// A specimen with its journey so far.
#[derive(Debug, Clone)]
pub struct SpecimenRecord {
    pub specimen: Model,
    pub events: Vec<specimen_event::Model>,
}

impl Audited for SpecimenRecord {
    fn access(&self) -> Access {
        Access::patient(resource(self.specimen.id), self.specimen.patient_id)
    }
}

pub fn resource(id: Uuid) -> String {
    format!("specimens/{id}")
}

/// Adds a test to the catalogue. A retry with the same key returns the test
/// the first call added.
pub async fn create_test_type(
    db: &DatabaseConnection,
    new: NewTestType,
    key: Option<&RequestKey>,
) -> Result<test_type::Model, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "CreateTestType", key, async |txn, claimed| {
            if let Claimed::Replay(_) = claimed {
                // A test is known by its code, which the same request names.
                return find_test_type(txn, &new.code).await;
            }
            let code = new.code.clone();
            let row = test_type::ActiveModel {
                code: Set(new.code),
                name: Set(new.name),
                specimen_type: Set(new.specimen_type),
                turnaround_hours: Set(new.turnaround_hours),
                create_time: Set(Utc::now()),
            };
            match row.insert(txn).await {
                Ok(inserted) => Ok(inserted),
                Err(error)
                    if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
                {
                    Err(ApiError::AlreadyExists {
                        message: format!("test type {code} already exists"),
                        resource: "test_type",
                        existing_id: code,
                    })
                }
                Err(error) => Err(error.into()),
            }
        })
        .await
}

/// One page of the catalogue in code order.
pub async fn list_test_types(
    db: &impl ConnectionTrait,
    page: &PageRequest,
) -> Result<Vec<test_type::Model>, ApiError> {
    let query = page.by_text(test_type::Entity::find(), test_type::Column::Code);
    Ok(query.all(db).await?)
}

/// Requests a test for a patient.
pub async fn request(
    db: &DatabaseConnection,
    new: NewSpecimen,
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<SpecimenRecord, ApiError> {
    audit::create(
        db,
        &IDEMPOTENCY_KEYS,
        "RequestSpecimen",
        actor,
        key,
        load,
        async |txn, id| {
            patients::require_active(txn, new.patient_id).await?;
            find_test_type(txn, &new.test_code).await?;
            let now = Utc::now();
            let requested = SpecimenState::Requested;
            ActiveModel {
                id: Set(id),
                patient_id: Set(new.patient_id),
                test_code: Set(new.test_code),
                state: Set(requested.as_str().to_owned()),
                notes: Set(new.notes),
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
                overdue_raised_at: Set(None),
            }
            .insert(txn)
            .await?;
            add_event(txn, id, requested, now, actor, String::new()).await?;
            load(txn, id).await
        },
    )
    .await
}

/// Takes `step` with a specimen, if its current state allows it. A result
/// raises `SpecimenResulted`.
pub async fn transition(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    step: Step,
    actor: &Actor,
) -> Result<SpecimenRecord, ApiError> {
    let to = step.to();
    audit::audited_one(db, actor, async |txn| {
        let now = Utc::now();
        let current = find(txn, id).await?;
        let details = step.details();
        let mut changes: Vec<(Column, SimpleExpr)> = Vec::new();
        match step {
            Step::Collect | Step::Receive => {}
            Step::Dispatch {
                courier,
                lab,
                tracking_reference,
            } => {
                let test = find_test_type(txn, &current.test_code).await?;
                let turnaround = Duration::hours(i64::from(test.turnaround_hours));
                changes.push((Column::DispatchTime, Expr::value(now)));
                changes.push((Column::DueTime, Expr::value(now + turnaround)));
                changes.push((Column::Courier, Expr::value(courier)));
                changes.push((Column::Lab, Expr::value(lab)));
                changes.push((Column::TrackingReference, Expr::value(tracking_reference)));
            }
            Step::Result {
                summary,
                abnormal,
                document_id,
            } => {
                if let Some(document_id) = document_id {
                    check_result_document(txn, document_id, current.patient_id).await?;
                    changes.push((Column::ResultDocumentId, Expr::value(document_id)));
                }
                changes.push((Column::ResultSummary, Expr::value(summary)));
                changes.push((Column::Abnormal, Expr::value(abnormal)));
            }
            Step::Reject { reason } => {
                changes.push((Column::RejectionReason, Expr::value(reason)));
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
        for (column, value) in changes {
            update = update.col_expr(column, value);
        }
        if update.exec(txn).await?.rows_affected == 0 {
            let current = find(txn, id).await?;
            return Err(match SpecimenState::from_stored(&current.state) {
                Some(state) if !to.reachable_from().contains(&state) => {
                    ApiError::wrong_state(resource(id), state.as_str(), to.action())
                }
                _ => ApiError::stale_etag(resource(id)),
            });
        }
        add_event(txn, id, to, now, actor, details).await?;
        let record = load(txn, id).await?;
        if to == SpecimenState::Resulted {
            events::raise(txn, [events::specimen_resulted(&record.specimen)]).await?;
        }
        Ok(record)
    })
    .await
}

/// A result's document must be on file for the same patient.
async fn check_result_document(
    db: &impl ConnectionTrait,
    document_id: Uuid,
    patient_id: Uuid,
) -> Result<(), ApiError> {
    let document = documents::find(db, document_id)
        .await
        .map_err(|_| ApiError::invalid("document_id", "is not a document on file"))?;
    if document.patient_id != patient_id {
        return Err(ApiError::invalid(
            "document_id",
            "belongs to another patient",
        ));
    }
    Ok(())
}

pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<SpecimenRecord, ApiError> {
    audit::read_one(db, actor, async |txn| load(txn, id).await).await
}

/// One page of a patient's specimens, oldest request first; audited once.
pub async fn list_for_patient(
    db: &DatabaseConnection,
    patient_id: Uuid,
    state: Option<SpecimenState>,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<SpecimenRecord>, ApiError> {
    audit::read(db, actor, async |txn| {
        patients::find(txn, patient_id).await?;
        let mut query = Specimens::find().filter(Column::PatientId.eq(patient_id));
        if let Some(state) = state {
            query = query.filter(Column::State.eq(state.as_str()));
        }
        let rows = page.by_id(query, Column::Id)?.all(txn).await?;
        let records = with_events(txn, rows).await?;
        let listing = format!("{}/specimens", patients::resource(patient_id));
        Ok((records, [Access::patient(listing, patient_id)]))
    })
    .await
}

/// Specimens with the lab past their due time at `as_of`, oldest dispatch
/// first. Each specimen served is audited against its patient.
pub async fn list_overdue(
    db: &DatabaseConnection,
    as_of: DateTime<Utc>,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<SpecimenRecord>, ApiError> {
    audit::read(db, actor, async |txn| {
        let query = overdue(Specimens::find(), as_of);
        let query =
            page.by_then_id::<_, _, _, DateTime<Utc>>(query, Column::DispatchTime, Column::Id)?;
        let records = with_events(txn, query.all(txn).await?).await?;
        let served = audit::served(page, &records, "specimens");
        Ok((records, served))
    })
    .await
}

/// Overdue specimens raised per sweep: a longer backlog is raised by the
/// sweeps that follow.
pub const OVERDUE_BATCH: u64 = 500;

/// The overdue sweep: in one write transaction, raises `SpecimenOverdue`
/// for up to [`OVERDUE_BATCH`] specimens overdue at `now` (by the rule of
/// [`list_overdue`]: with the lab and past their due time) not raised
/// before, oldest dispatch first, and marks them raised, so each specimen
/// is raised once. Returns how many it raised; a full batch means more may
/// be waiting.
pub async fn raise_overdue(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, ApiError> {
    // How many are overdue in all, raised or not, for the dashboards.
    let overdue_now = overdue(Specimens::find(), now).count(db).await?;
    medsec_platform::telemetry::metrics::specimens_overdue(overdue_now);
    let txn = db::begin_write(db).await?;
    // Concurrent sweeps on PostgreSQL take different rows; SQLite's write
    // lock, taken by `begin_write`, serialises them (and has no row locks).
    let due = overdue(Specimens::find(), now)
        .filter(Column::OverdueRaisedAt.is_null())
        .order_by_asc(Column::DispatchTime)
        .order_by_asc(Column::Id)
        .limit(OVERDUE_BATCH)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(&*txn)
        .await?;
    if due.is_empty() {
        txn.rollback().await?;
        return Ok(0);
    }
    events::raise(&*txn, due.iter().map(events::specimen_overdue)).await?;
    let ids: Vec<Uuid> = due.iter().map(|row| row.id).collect();
    let marked = Specimens::update_many()
        .col_expr(Column::OverdueRaisedAt, Expr::value(now))
        .filter(Column::Id.is_in(ids))
        .filter(Column::OverdueRaisedAt.is_null())
        .exec(&*txn)
        .await?
        .rows_affected;
    if marked != due.len() as u64 {
        // Another sweep raised some of them meanwhile: raise none twice.
        txn.rollback().await?;
        return Err(ApiError::lost_race());
    }
    txn.commit().await?;
    Ok(marked)
}

/// `query` narrowed to specimens with the lab past their due time at `as_of`.
fn overdue(query: Select<Specimens>, as_of: DateTime<Utc>) -> Select<Specimens> {
    let with_lab = SpecimenState::ALL
        .iter()
        .filter(|state| state.is_with_lab())
        .map(|state| state.as_str());
    query
        .filter(Column::State.is_in(with_lab))
        .filter(Column::DueTime.lt(as_of))
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
    let events = specimen_event::Entity::find()
        .filter(specimen_event::Column::SpecimenId.is_in(ids))
        .order_by_asc(specimen_event::Column::Id)
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
    specimen_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        specimen_id: Set(specimen_id),
        state: Set(state.as_str().to_owned()),
        time: Set(time),
        actor: Set(actor.subject.clone()),
        details: Set(details),
    }
    .insert(db)
    .await?;
    Ok(())
}
