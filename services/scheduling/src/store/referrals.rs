//! The waiting list: referrals and their RTT clocks.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait as _, IntoActiveModel as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use uuid::Uuid;

use super::entities::referral;
use super::{RequestKey, after_id, create_once, db_error};
use crate::domain::ReferralStatus;

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

/// Takes a waiting referral off the list; nothing is deleted.
pub async fn remove(
    db: &DatabaseConnection,
    id: Uuid,
    reason: &str,
) -> Result<referral::Model, ApiError> {
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
        .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()))
        .exec(db)
        .await
        .map_err(db_error)?
        .rows_affected;
    let current = get(db, id).await?;
    if changed == 0 {
        return Err(ApiError::wrong_state(
            format!("referrals/{id}"),
            &current.status,
            "remove (only a waiting referral can be removed; cancel its appointment first)",
        ));
    }
    Ok(current)
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
