//! Queries and changes of patients. Every change that checks a precondition
//! writes first (a guarded UPDATE), so concurrent callers are ordered by the
//! database and SQLite never has to upgrade a read lock. One active
//! registration per NHS number is held by a partial unique index.

use chrono::{DateTime, NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::db::{self, escape_like};
use medsec_platform::idempotency::RequestKey;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, IntoActiveModel, QueryFilter, Set, SqlErr,
};
use uuid::Uuid;

use medsec_platform::audit::{self, Access, Actor, Audited};

use super::entities::patient::{ActiveModel, Column, Entity as Patients, Model};
use super::{IDEMPOTENCY_KEYS, events};
use crate::domain::{
    Address, GpPractice, NhsNumber, PatientDetails, PatientPatch, Postcode, PostcodeFilter, Sex,
};

const RESOURCE: &str = "patient";

/// Filters of ListPatients, already validated and normalised.
#[derive(Debug, Default, Clone)]
pub struct PatientFilter {
    pub nhs_number: Option<NhsNumber>,
    /// Matched case-insensitively.
    pub family_name_prefix: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub postcode: Option<PostcodeFilter>,
    pub include_archived: bool,
}

impl PatientFilter {
    /// A stable description of every filter value, for page tokens.
    pub fn fingerprint(&self) -> String {
        format!(
            "nhs={:?};family={:?};birth={:?};postcode={:?};archived={}",
            self.nhs_number.as_ref().map(NhsNumber::as_str),
            self.family_name_prefix.as_deref().map(fold),
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

/// An access to the patient's own record.
impl Audited for Model {
    fn access(&self) -> Access {
        Access::patient(resource(self.id), self.id)
    }
}

/// A family name as it is searched: lower-cased.
fn fold(name: &str) -> String {
    name.to_lowercase()
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
    audit::read_one(db, actor, async |txn| find(txn, id).await).await
}

/// Registers a patient, raising `PatientRegistered`. With a key, a retry of
/// the same request returns the patient the first one made (and raises
/// nothing).
pub async fn create(
    db: &DatabaseConnection,
    details: PatientDetails,
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<Model, ApiError> {
    audit::create(
        db,
        &IDEMPOTENCY_KEYS,
        "CreatePatient",
        actor,
        key,
        find,
        async |txn, id| {
            ensure_nhs_number_free(txn, &details.nhs_number, None).await?;
            let now = Utc::now();
            let mut row = ActiveModel {
                id: Set(id),
                create_time: Set(now),
                archive_time: Set(None),
                revision: Set(1),
                ..Default::default()
            };
            set_details(&mut row, &details, now);
            let registered =
                holding(txn, &details.nhs_number, async |txn| row.insert(txn).await).await?;
            events::raise(txn, [events::patient_registered(id)]).await?;
            Ok(registered)
        },
    )
    .await
}

/// Changes the fields of a patient that `patch` names, under an optional
/// etag, raising `PatientUpdated` with the paths applied.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    patch: PatientPatch,
    actor: &Actor,
) -> Result<Model, ApiError> {
    audit::audited_one(db, actor, async |txn| {
        let now = Utc::now();
        let current = bump_revision(txn, id, expected_revision, now, None, "update").await?;
        let mut details = to_details(&current)?;
        let before_nhs = details.nhs_number.clone();
        let paths = patch.paths();
        details.apply(patch);
        if details.nhs_number != before_nhs {
            ensure_nhs_number_free(txn, &details.nhs_number, Some(id)).await?;
        }
        let mut row = current.into_active_model();
        set_details(&mut row, &details, now);
        let updated = holding(txn, &details.nhs_number, async |txn| row.update(txn).await).await?;
        events::raise(txn, [events::patient_updated(id, paths)]).await?;
        Ok(updated)
    })
    .await
}

/// Archives a patient, raising `PatientArchived`: nothing is deleted, and
/// the NHS number is free for a new active registration. A patient already
/// archived is refused, and nothing is raised.
pub async fn archive(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    actor: &Actor,
) -> Result<Model, ApiError> {
    audit::audited_one(db, actor, async |txn| {
        let now = Utc::now();
        let archived = bump_revision(txn, id, expected_revision, now, Some(now), "archive").await?;
        events::raise(txn, [events::patient_archived(id)]).await?;
        Ok(archived)
    })
    .await
}

/// One page of patients in id (registration) order; every patient served is
/// audited as read.
pub async fn list(
    db: &DatabaseConnection,
    filter: &PatientFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<Model>, ApiError> {
    audit::read(db, actor, async |txn| {
        let rows = select(txn, filter, page).await?;
        let served = audit::served(page, &rows, "patients");
        Ok((rows, served))
    })
    .await
}

/// Rows whose `column` starts with `prefix`: a LIKE says so exactly, and a
/// byte range beside it lets an index find them whatever the plan (a
/// prepared LIKE with a bound pattern uses no index on PostgreSQL, whose
/// generic plan cannot see the pattern's fixed prefix). On PostgreSQL the
/// range compares in the "C" collation, as the prefix indexes are built
/// (records migration 6); SQLite compares bytes already.
fn starts_with(column: Column, prefix: &str, backend: DbBackend) -> Condition {
    let pattern = format!("{}%", escape_like(prefix));
    let matches = Condition::all().add(Expr::col(column).like(LikeExpr::new(pattern).escape('\\')));
    let Some(upper) = successor(prefix) else {
        return matches;
    };
    let in_c = |operator: &'static str, bound: String| {
        Expr::cust_with_exprs(
            format!(r#"$1 COLLATE "C" {operator} $2"#),
            [Expr::col(column), Expr::val(bound)],
        )
    };
    match backend {
        DbBackend::Postgres => matches
            .add(in_c(">=", prefix.to_owned()))
            .add(in_c("<", upper)),
        _ => matches
            .add(Expr::col(column).gte(prefix))
            .add(Expr::col(column).lt(upper)),
    }
}

/// The least text greater than every text starting with `prefix`, in byte
/// (code point) order: `prefix` with its last character moved on by one.
/// None for an empty prefix, or one ending in the last code point.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32)?;
    chars.push(next);
    Some(chars.into_iter().collect())
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
    let backend = db.get_database_backend();
    if let Some(prefix) = &filter.family_name_prefix {
        condition = condition.add(starts_with(
            Column::FamilyNameFolded,
            &fold(prefix),
            backend,
        ));
    }
    if let Some(birth_date) = filter.birth_date {
        condition = condition.add(Column::BirthDate.eq(birth_date));
    }
    match &filter.postcode {
        Some(PostcodeFilter::Exact(postcode)) => {
            condition = condition.add(Column::AddressPostcode.eq(postcode.as_str()));
        }
        Some(PostcodeFilter::District(outward)) => {
            let district = format!("{outward} ");
            condition = condition.add(starts_with(Column::AddressPostcode, &district, backend));
        }
        None => {}
    }
    Ok(page
        .by_id(Patients::find().filter(condition), Column::Id)?
        .all(db)
        .await?)
}

/// Bumps the revision of an active patient (checking the etag), archiving
/// it when `archive_time` is given, and reads it back. When nothing changed,
/// says why `action` cannot be done: no such patient, archived, or a stale
/// etag.
async fn bump_revision(
    db: &impl ConnectionTrait,
    id: Uuid,
    expected_revision: Option<i64>,
    now: DateTime<Utc>,
    archive_time: Option<DateTime<Utc>>,
    action: &str,
) -> Result<Model, ApiError> {
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
    let changed = update.exec(db).await?.rows_affected;
    let patient = find(db, id).await?;
    match changed {
        0 if patient.archive_time.is_some() => {
            Err(ApiError::wrong_state(resource(id), "archived", action))
        }
        0 => Err(ApiError::stale_etag(resource(id))),
        _ => Ok(patient),
    }
}

/// The active patient other than `except` registered with `nhs_number`.
async fn holder(
    db: &impl ConnectionTrait,
    nhs_number: &NhsNumber,
    except: Option<Uuid>,
) -> Result<Option<Model>, DbErr> {
    let mut query = Patients::find()
        .filter(Column::NhsNumber.eq(nhs_number.as_str()))
        .filter(Column::ArchiveTime.is_null());
    if let Some(id) = except {
        query = query.filter(Column::Id.ne(id));
    }
    query.one(db).await
}

async fn ensure_nhs_number_free(
    db: &impl ConnectionTrait,
    nhs_number: &NhsNumber,
    except: Option<Uuid>,
) -> Result<(), ApiError> {
    match holder(db, nhs_number, except).await? {
        Some(_) => Err(already_registered()),
        None => Ok(()),
    }
}

/// An active patient holds the number. The answer names the field, never the
/// number or the other patient: the caller may not be allowed to read them.
fn already_registered() -> ApiError {
    ApiError::AlreadyExists {
        message: "patient.nhs_number is already registered to an active patient".to_owned(),
        resource: RESOURCE,
        existing_id: String::new(),
    }
}

/// Writes a row holding `nhs_number` in a savepoint. A concurrent
/// registration of the same number, committed after this transaction
/// checked it was free, trips the unique index: the client is told who holds
/// it (or to retry, when the holder has gone again).
async fn holding(
    txn: &DatabaseTransaction,
    nhs_number: &NhsNumber,
    write: impl AsyncFnOnce(&DatabaseTransaction) -> Result<Model, DbErr>,
) -> Result<Model, ApiError> {
    let savepoint = db::savepoint(txn).await?;
    match write(&savepoint).await {
        Ok(row) => {
            savepoint.commit().await?;
            Ok(row)
        }
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            savepoint.rollback().await?;
            match holder(txn, nhs_number, None).await? {
                Some(_) => Err(already_registered()),
                None => Err(ApiError::lost_race()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

fn set_details(row: &mut ActiveModel, details: &PatientDetails, now: DateTime<Utc>) {
    row.nhs_number = Set(details.nhs_number.as_str().to_owned());
    row.given_name = Set(details.given_name.clone());
    row.family_name = Set(details.family_name.clone());
    row.family_name_folded = Set(fold(&details.family_name));
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

/// The street lines of a stored address (stored joined by newlines).
pub fn address_lines(row: &Model) -> Vec<String> {
    row.address_lines
        .as_deref()
        .filter(|lines| !lines.is_empty())
        .map(|lines| lines.split('\n').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The validated details a stored row holds.
fn to_details(row: &Model) -> Result<PatientDetails, ApiError> {
    let corrupt =
        |what: &str| ApiError::internal(format!("stored patient {} has a bad {what}", row.id));
    let address = match &row.address_postcode {
        Some(postcode) => Some(Address {
            lines: address_lines(row),
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

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn the_successor_bounds_every_text_with_the_prefix() {
        assert_eq!(successor("smi").as_deref(), Some("smj"));
        assert_eq!(successor("sw1a ").as_deref(), Some("sw1a!"));
        assert_eq!(successor("o'b").as_deref(), Some("o'c"));
        assert_eq!(successor("\u{d7ff}").as_deref(), Some("\u{e000}"));
        assert_eq!(successor(""), None);
        assert_eq!(successor("a\u{10ffff}"), None);
        for text in ["smith", "smiz\u{10ffff}", "smi"] {
            assert!(("smi".."smj").contains(&text), "{text}");
        }
    }
}
