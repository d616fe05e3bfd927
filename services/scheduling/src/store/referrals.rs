//! The waiting list: referrals and their RTT clocks.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::db::begin_write;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait as _, IntoActiveModel as _, PaginatorTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};
use uuid::Uuid;

use super::entities::{appointment, referral};
use super::{RequestKey, after_id, create_once, db_error};
use crate::domain::{AppointmentStatus, ReferralStatus};

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<referral::Model, ApiError> {
    referral::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("referral", id.to_string()))
}

pub async fn create(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: referral::Model,
) -> Result<referral::Model, ApiError> {
    let created = create_once(db, "CreateReferral", key, row.id, async |txn| {
        referral::Entity::insert(row.into_active_model().reset_all())
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    })
    .await?;
    get(db, created.id()).await
}

/// Filters of ListReferrals.
#[derive(Debug, Default)]
pub struct ReferralFilter {
    pub specialty: Option<String>,
    pub status: Option<String>,
    pub patient_id: Option<Uuid>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &ReferralFilter,
    page: &PageRequest,
) -> Result<Vec<referral::Model>, ApiError> {
    let mut condition = Condition::all();
    if let Some(specialty) = &filter.specialty {
        condition = condition.add(referral::Column::Specialty.eq(specialty.as_str()));
    }
    if let Some(status) = &filter.status {
        condition = condition.add(referral::Column::Status.eq(status.as_str()));
    }
    if let Some(id) = filter.patient_id {
        condition = condition.add(referral::Column::PatientId.eq(id));
    }
    if let Some(after) = after_id(page)? {
        condition = condition.add(referral::Column::Id.gt(after));
    }
    Ok(referral::Entity::find()
        .filter(condition)
        .order_by_asc(referral::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

/// New values for an update; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ReferralChange {
    pub priority: Option<String>,
    pub earliest: Option<Option<chrono::NaiveDate>>,
    /// JSON, as stored.
    pub unavailable: Option<String>,
    pub required_clinician: Option<Option<Uuid>>,
    pub preferred_clinician: Option<Option<Uuid>>,
}

/// Changes a waiting or booked referral, under an optional etag. The write is
/// guarded by the revision read, so a concurrent change makes this one lose
/// cleanly (ABORTED) rather than overwrite it.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    change: ReferralChange,
) -> Result<referral::Model, ApiError> {
    let current = get(db, id).await?;
    if current.status == ReferralStatus::Removed.as_str() {
        return Err(ApiError::wrong_state(
            format!("referrals/{id}"),
            &current.status,
            "update",
        ));
    }
    if expected_revision.is_some_and(|revision| revision != current.revision) {
        return Err(ApiError::stale_etag(format!("referrals/{id}")));
    }
    let mut update = referral::Entity::update_many()
        .col_expr(referral::Column::UpdateTime, Expr::value(Utc::now()))
        .col_expr(
            referral::Column::Revision,
            Expr::col(referral::Column::Revision).add(1),
        )
        .filter(referral::Column::Id.eq(id))
        .filter(referral::Column::Revision.eq(current.revision))
        .filter(referral::Column::Status.ne(ReferralStatus::Removed.as_str()));
    if let Some(priority) = change.priority {
        update = update.col_expr(referral::Column::Priority, Expr::value(priority));
    }
    if let Some(earliest) = change.earliest {
        update = update.col_expr(referral::Column::Earliest, Expr::value(earliest));
    }
    if let Some(unavailable) = change.unavailable {
        update = update.col_expr(referral::Column::Unavailable, Expr::value(unavailable));
    }
    if let Some(clinician) = change.required_clinician {
        update = update.col_expr(referral::Column::RequiredClinician, Expr::value(clinician));
    }
    if let Some(clinician) = change.preferred_clinician {
        update = update.col_expr(referral::Column::PreferredClinician, Expr::value(clinician));
    }
    let changed = update.exec(db).await.map_err(db_error)?.rows_affected;
    if changed == 0 {
        let now = get(db, id).await?;
        return Err(if now.status == ReferralStatus::Removed.as_str() {
            ApiError::wrong_state(format!("referrals/{id}"), &now.status, "update")
        } else {
            ApiError::stale_etag(format!("referrals/{id}"))
        });
    }
    get(db, id).await
}

/// Takes a referral off the list; nothing is deleted. A waiting referral can
/// always be removed; a booked one once no appointment of it is still to
/// come or in progress (a treated patient's pathway is closed this way).
pub async fn remove(
    db: &DatabaseConnection,
    id: Uuid,
    reason: &str,
) -> Result<referral::Model, ApiError> {
    let txn = begin_write(db).await?;
    let current = get(&txn, id).await?;
    let live = appointment::Entity::find()
        .filter(appointment::Column::ReferralId.eq(id))
        .filter(appointment::Column::Status.is_in([
            AppointmentStatus::Booked.as_str(),
            AppointmentStatus::Arrived.as_str(),
        ]))
        .count(&txn)
        .await?;
    let removable = current.status == ReferralStatus::Waiting.as_str()
        || (current.status == ReferralStatus::Booked.as_str() && live == 0);
    if !removable {
        let why = if live > 0 {
            "remove it while an appointment is booked or in progress; cancel or complete it first"
        } else {
            "remove it"
        };
        return Err(ApiError::wrong_state(
            format!("referrals/{id}"),
            &current.status,
            why,
        ));
    }
    // Guarded by the revision read: a booking racing this removal bumps it.
    let changed = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::value(ReferralStatus::Removed.as_str()),
        )
        .col_expr(
            referral::Column::RemovalReason,
            Expr::value(reason.to_owned()),
        )
        .col_expr(referral::Column::UpdateTime, Expr::value(Utc::now()))
        .col_expr(
            referral::Column::Revision,
            Expr::col(referral::Column::Revision).add(1),
        )
        .filter(referral::Column::Id.eq(id))
        .filter(referral::Column::Revision.eq(current.revision))
        .exec(&txn)
        .await
        .map_err(db_error)?
        .rows_affected;
    if changed == 0 {
        return Err(ApiError::stale_etag(format!("referrals/{id}")));
    }
    // A removed referral keeps no freed slot on hold.
    super::appointments::release_holds_for(&txn, id).await?;
    txn.commit().await?;
    get(db, id).await
}

/// Every waiting referral of a specialty.
pub async fn waiting(
    db: &impl ConnectionTrait,
    specialty: &str,
) -> Result<Vec<referral::Model>, ApiError> {
    Ok(referral::Entity::find()
        .filter(referral::Column::Specialty.eq(specialty))
        .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()))
        .all(db)
        .await?)
}
