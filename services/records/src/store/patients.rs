//! Queries and changes of patients. Every change that checks a precondition
//! writes first (a guarded UPDATE), so concurrent callers are ordered by the
//! database and SQLite never has to upgrade a read lock.

use chrono::{DateTime, NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::db::{begin_write, escape_like};
use medsec_platform::idempotency::RequestKey;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, Set, SqlErr,
};
use uuid::Uuid;

use super::IDEMPOTENCY_KEYS;
use super::audit::{self, Access, Actor};
use super::entities::patient::{ActiveModel, Column, Entity as Patients, Model};
use crate::domain::{Address, GpPractice, NhsNumber, PatientDetails, Postcode, Sex};

const RESOURCE: &str = "patient";

/// Filters of ListPatients, already validated and normalised.
#[derive(Debug, Default, Clone)]
pub struct PatientFilter {
    pub nhs_number: Option<NhsNumber>,
    pub family_name_prefix: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub postcode: Option<PostcodeFilter>,
    pub include_archived: bool,
}

#[derive(Debug, Clone)]
pub enum PostcodeFilter {
    Exact(Postcode),
    District(String),
}

impl PatientFilter {
    /// A stable description of every filter value, for page tokens.
    pub fn fingerprint(&self) -> String {
        format!(
            "nhs={:?};family={:?};birth={:?};postcode={:?};archived={}",
            self.nhs_number.as_ref().map(NhsNumber::as_str),
            self.family_name_prefix,
            self.birth_date,
            self.postcode,
            self.include_archived
        )
    }
}

/// The audit resource name of a patient.
pub fn resource(id: Uuid) -> String {
    format!("patients/{id}")
}

/// A patient, archived or not; not audited (callers audit their access).
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    Patients::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, id.to_string()))
}

/// Fails unless the patient exists and is active: an archived record takes
/// no new entries.
pub async fn require_active(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    let patient = find(db, id).await?;
    if patient.archive_time.is_some() {
        return Err(ApiError::wrong_state(
            resource(id),
            "archived",
            "add to its record",
        ));
    }
    Ok(patient)
}

/// Reads a patient, auditing the read.
pub async fn get(db: &DatabaseConnection, id: Uuid, actor: &Actor) -> Result<Model, ApiError> {
    let txn = begin_write(db).await?;
    let patient = find(&txn, id).await?;
    audit::record(&txn, actor, [Access::new("GetPatient", resource(id), id)]).await?;
    txn.commit().await?;
    Ok(patient)
}

/// Registers a patient. With a key, a retry of the same request returns the
/// patient the first one made.
pub async fn create(
    db: &DatabaseConnection,
    details: PatientDetails,
    key: Option<RequestKey>,
    actor: &Actor,
) -> Result<Model, ApiError> {
    let creation = IDEMPOTENCY_KEYS
        .begin_create(db, "CreatePatient", key.as_ref())
        .await?;
    let (txn, id) = (creation.txn, creation.id);
    if let Some(existing) = creation.replay_of {
        let patient = find(&txn, existing).await?;
        audit::record(
            &txn,
            actor,
            [Access::new("CreatePatient", resource(existing), existing)],
        )
        .await?;
        txn.commit().await?;
        return Ok(patient);
    }
    ensure_nhs_number_free(&txn, &details.nhs_number, None).await?;

    let now = Utc::now();
    let mut row = ActiveModel {
        id: Set(id),
        create_time: Set(now),
        archive_time: Set(None),
        revision: Set(1),
        ..Default::default()
    };
    set_details(&mut row, &details, now);
    let inserted = match row.insert(&txn).await {
        Ok(inserted) => inserted,
        Err(error) => {
            txn.rollback().await?;
            return Err(on_write_error(db, error, &details.nhs_number).await);
        }
    };
    audit::record(
        &txn,
        actor,
        [Access::new("CreatePatient", resource(id), id)],
    )
    .await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Changes a patient's details with `change`, under an optional etag.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    change: impl FnOnce(&mut PatientDetails),
    actor: &Actor,
) -> Result<Model, ApiError> {
    let txn = begin_write(db).await?;
    let now = Utc::now();
    let claimed = bump_revision(&txn, id, expected_revision, now, None).await?;
    if claimed == 0 {
        return Err(explain_missed_update(&txn, id, "update").await);
    }
    let current = find(&txn, id).await?;
    let mut details = to_details(&current)?;
    let before_nhs = details.nhs_number.clone();
    change(&mut details);
    if details.nhs_number != before_nhs {
        ensure_nhs_number_free(&txn, &details.nhs_number, Some(id)).await?;
    }
    let mut row = current.into_active_model();
    set_details(&mut row, &details, now);
    let updated = match row.update(&txn).await {
        Ok(updated) => updated,
        Err(error) => {
            txn.rollback().await?;
            return Err(on_write_error(db, error, &details.nhs_number).await);
        }
    };
    audit::record(
        &txn,
        actor,
        [Access::new("UpdatePatient", resource(id), id)],
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Archives a patient: nothing is deleted, and the NHS number is free for a
/// new active registration.
pub async fn archive(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    actor: &Actor,
) -> Result<Model, ApiError> {
    let txn = begin_write(db).await?;
    let now = Utc::now();
    let archived = bump_revision(&txn, id, expected_revision, now, Some(now)).await?;
    if archived == 0 {
        return Err(explain_missed_update(&txn, id, "archive").await);
    }
    let patient = find(&txn, id).await?;
    audit::record(
        &txn,
        actor,
        [Access::new("ArchivePatient", resource(id), id)],
    )
    .await?;
    txn.commit().await?;
    Ok(patient)
}

/// One page of patients in id (registration) order; every patient listed is
/// audited as read.
pub async fn list(
    db: &DatabaseConnection,
    filter: &PatientFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<Model>, ApiError> {
    let txn = begin_write(db).await?;
    let rows = select(&txn, filter, page).await?;
    // Only the page served is read by the caller; the look-ahead row is not.
    let served = rows
        .len()
        .min(usize::try_from(page.size).unwrap_or(usize::MAX));
    audit::record(
        &txn,
        actor,
        rows[..served]
            .iter()
            .map(|row| Access::new("ListPatients", resource(row.id), row.id)),
    )
    .await?;
    txn.commit().await?;
    Ok(rows)
}

async fn select(
    db: &impl ConnectionTrait,
    filter: &PatientFilter,
    page: &PageRequest,
) -> Result<Vec<Model>, ApiError> {
    let mut condition = Condition::all();
    if !filter.include_archived {
        condition = condition.add(Column::ArchiveTime.is_null());
    }
    if let Some(nhs_number) = &filter.nhs_number {
        condition = condition.add(Column::NhsNumber.eq(nhs_number.as_str()));
    }
    if let Some(prefix) = &filter.family_name_prefix {
        let pattern = format!("{}%", escape_like(prefix));
        condition = condition
            .add(Expr::col(Column::FamilyNameFolded).like(LikeExpr::new(pattern).escape('\\')));
    }
    if let Some(birth_date) = filter.birth_date {
        condition = condition.add(Column::BirthDate.eq(birth_date));
    }
    match &filter.postcode {
        Some(PostcodeFilter::Exact(postcode)) => {
            condition = condition.add(Column::AddressPostcode.eq(postcode.as_str()));
        }
        Some(PostcodeFilter::District(outward)) => {
            let pattern = format!("{} %", escape_like(outward));
            condition = condition
                .add(Expr::col(Column::AddressPostcode).like(LikeExpr::new(pattern).escape('\\')));
        }
        None => {}
    }
    Ok(page
        .by_id(Patients::find().filter(condition), Column::Id)?
        .all(db)
        .await?)
}

/// Bumps the revision of an active patient (checking the etag), and archives
/// it when `archive_time` is given. Returns the rows changed: 0 or 1.
async fn bump_revision(
    db: &impl ConnectionTrait,
    id: Uuid,
    expected_revision: Option<i64>,
    now: DateTime<Utc>,
    archive_time: Option<DateTime<Utc>>,
) -> Result<u64, DbErr> {
    let mut update = Patients::update_many()
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdateTime, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::ArchiveTime.is_null());
    if let Some(time) = archive_time {
        update = update.col_expr(Column::ArchiveTime, Expr::value(time));
    }
    if let Some(revision) = expected_revision {
        update = update.filter(Column::Revision.eq(revision));
    }
    Ok(update.exec(db).await?.rows_affected)
}

/// Why a guarded change touched nothing: no such patient, archived, or a
/// stale etag.
async fn explain_missed_update(db: &impl ConnectionTrait, id: Uuid, action: &str) -> ApiError {
    match find(db, id).await {
        Err(error) => error,
        Ok(patient) if patient.archive_time.is_some() => {
            ApiError::wrong_state(format!("patients/{id}"), "archived", action)
        }
        Ok(_) => ApiError::stale_etag(format_args!("patients/{id}")),
    }
}

async fn ensure_nhs_number_free(
    db: &impl ConnectionTrait,
    nhs_number: &NhsNumber,
    except: Option<Uuid>,
) -> Result<(), ApiError> {
    let mut query = Patients::find()
        .filter(Column::NhsNumber.eq(nhs_number.as_str()))
        .filter(Column::ArchiveTime.is_null());
    if let Some(id) = except {
        query = query.filter(Column::Id.ne(id));
    }
    match query.one(db).await? {
        Some(existing) => Err(already_registered(nhs_number, existing.id)),
        None => Ok(()),
    }
}

fn already_registered(nhs_number: &NhsNumber, existing: Uuid) -> ApiError {
    ApiError::AlreadyExists {
        message: format!(
            "NHS number {nhs_number} is already registered to active patient {existing}"
        ),
        resource: RESOURCE,
        existing_id: existing.to_string(),
    }
}

/// Maps a failed write: a concurrent registration of the same NHS number
/// trips the unique index; name the patient who holds it.
async fn on_write_error(db: &DatabaseConnection, error: DbErr, nhs_number: &NhsNumber) -> ApiError {
    if !matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return ApiError::internal(error);
    }
    let holder = Patients::find()
        .filter(Column::NhsNumber.eq(nhs_number.as_str()))
        .filter(Column::ArchiveTime.is_null())
        .one(db)
        .await;
    match holder {
        Ok(Some(existing)) => already_registered(nhs_number, existing.id),
        Ok(None) => {
            ApiError::Aborted("a concurrent registration changed this NHS number; retry".to_owned())
        }
        Err(error) => ApiError::internal(error),
    }
}

fn set_details(row: &mut ActiveModel, details: &PatientDetails, now: DateTime<Utc>) {
    row.nhs_number = Set(details.nhs_number.as_str().to_owned());
    row.given_name = Set(details.given_name.clone());
    row.family_name = Set(details.family_name.clone());
    row.family_name_folded = Set(details.family_name.to_lowercase());
    row.birth_date = Set(details.birth_date);
    row.sex = Set(details.sex.as_str().to_owned());
    row.address_lines = Set(details.address.as_ref().map(|a| a.lines.join("\n")));
    row.address_town = Set(details
        .address
        .as_ref()
        .map(|a| a.town.clone())
        .filter(|town| !town.is_empty()));
    row.address_postcode = Set(details
        .address
        .as_ref()
        .map(|a| a.postcode.as_str().to_owned()));
    row.phone = Set(details.phone.clone());
    row.email = Set(details.email.clone());
    row.gp_ods_code = Set(details.gp_practice.as_ref().map(|gp| gp.ods_code.clone()));
    row.gp_name = Set(details
        .gp_practice
        .as_ref()
        .map(|gp| gp.name.clone())
        .filter(|name| !name.is_empty()));
    row.update_time = Set(now);
}

/// The validated details a stored row holds.
pub fn to_details(row: &Model) -> Result<PatientDetails, ApiError> {
    let corrupt =
        |what: &str| ApiError::internal(format!("stored patient {} has a bad {what}", row.id));
    let address = match &row.address_postcode {
        Some(postcode) => Some(Address {
            lines: row
                .address_lines
                .as_deref()
                .filter(|lines| !lines.is_empty())
                .map(|lines| lines.split('\n').map(str::to_owned).collect())
                .unwrap_or_default(),
            town: row.address_town.clone().unwrap_or_default(),
            postcode: Postcode::parse(postcode).map_err(|_| corrupt("postcode"))?,
        }),
        None => None,
    };
    Ok(PatientDetails {
        nhs_number: NhsNumber::parse(&row.nhs_number).map_err(|_| corrupt("nhs number"))?,
        given_name: row.given_name.clone(),
        family_name: row.family_name.clone(),
        birth_date: row.birth_date,
        sex: Sex::from_stored(&row.sex).ok_or_else(|| corrupt("sex"))?,
        address,
        phone: row.phone.clone(),
        email: row.email.clone(),
        gp_practice: row.gp_ods_code.as_ref().map(|code| GpPractice {
            ods_code: code.clone(),
            name: row.gp_name.clone().unwrap_or_default(),
        }),
    })
}
