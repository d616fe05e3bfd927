//! Enquiries and the counts that routing balances.

use chrono::{DateTime, Utc};
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait as _, IntoActiveModel as _, PaginatorTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};
use uuid::Uuid;

use super::entities::enquiry;
use super::{RequestKey, after_id, create_once, db_error};
use crate::domain::EnquiryStatus;

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<enquiry::Model, ApiError> {
    enquiry::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("enquiry", id.to_string()))
}

pub async fn create(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: enquiry::Model,
) -> Result<enquiry::Model, ApiError> {
    let created = create_once(db, "RouteEnquiry", key, row.id, async |txn| {
        enquiry::Entity::insert(row.into_active_model().reset_all())
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    })
    .await?;
    get(db, created.id()).await
}

/// Open enquiries assigned to a staff member.
pub async fn open_count(db: &impl ConnectionTrait, staff_id: Uuid) -> Result<u64, ApiError> {
    Ok(enquiry::Entity::find()
        .filter(enquiry::Column::AssignedStaffId.eq(staff_id))
        .filter(enquiry::Column::Status.eq(EnquiryStatus::Open.as_str()))
        .count(db)
        .await?)
}

pub async fn resolve(
    db: &DatabaseConnection,
    id: Uuid,
    notes: &str,
    now: DateTime<Utc>,
) -> Result<enquiry::Model, ApiError> {
    let changed = enquiry::Entity::update_many()
        .col_expr(
            enquiry::Column::Status,
            Expr::value(EnquiryStatus::Resolved.as_str()),
        )
        .col_expr(enquiry::Column::Notes, Expr::value(notes.to_owned()))
        .col_expr(enquiry::Column::ResolveTime, Expr::value(now))
        .filter(enquiry::Column::Id.eq(id))
        .filter(enquiry::Column::Status.eq(EnquiryStatus::Open.as_str()))
        .exec(db)
        .await
        .map_err(db_error)?
        .rows_affected;
    let current = get(db, id).await?;
    if changed == 0 {
        return Err(ApiError::wrong_state(
            format!("enquiries/{id}"),
            &current.status,
            "resolve",
        ));
    }
    Ok(current)
}

pub async fn list(
    db: &impl ConnectionTrait,
    staff_id: Option<Uuid>,
    status: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<enquiry::Model>, ApiError> {
    let mut condition = Condition::all();
    if let Some(id) = staff_id {
        condition = condition.add(enquiry::Column::AssignedStaffId.eq(id));
    }
    if let Some(status) = status {
        condition = condition.add(enquiry::Column::Status.eq(status));
    }
    if let Some(after) = after_id(page)? {
        condition = condition.add(enquiry::Column::Id.gt(after));
    }
    Ok(enquiry::Entity::find()
        .filter(condition)
        .order_by_asc(enquiry::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}
