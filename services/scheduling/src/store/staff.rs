//! Staff members, locations, rooms and the duty rota.

use medsec_platform::ApiError;
use medsec_platform::db::escape_like;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, LikeExpr};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait as _, IntoActiveModel as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use uuid::Uuid;

use super::entities::{duty_shift, location, room, staff};
use super::{Created, RequestKey, after_id, create_once, db_error};

pub async fn get_staff(db: &impl ConnectionTrait, id: Uuid) -> Result<staff::Model, ApiError> {
    staff::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("staff member", id.to_string()))
}

pub async fn create_staff(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: staff::Model,
) -> Result<staff::Model, ApiError> {
    let id = row.id;
    let created = create_once(db, "CreateStaffMember", key, id, async |txn| {
        staff::Entity::insert(row.into_active_model().reset_all())
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    })
    .await?;
    get_staff(db, created.id()).await
}

/// Filters of ListStaffMembers.
#[derive(Debug, Default)]
pub struct StaffFilter {
    pub role: Option<String>,
    pub specialty: Option<String>,
}

pub async fn list_staff(
    db: &impl ConnectionTrait,
    filter: &StaffFilter,
    page: &PageRequest,
) -> Result<Vec<staff::Model>, ApiError> {
    let mut condition = Condition::all();
    if let Some(role) = &filter.role {
        condition = condition.add(staff::Column::Role.eq(role.as_str()));
    }
    if let Some(specialty) = &filter.specialty {
        condition = condition.add(
            Expr::col(staff::Column::Specialties)
                .like(LikeExpr::new(format!("%,{},%", escape_like(specialty))).escape('\\')),
        );
    }
    if let Some(after) = after_id(page)? {
        condition = condition.add(staff::Column::Id.gt(after));
    }
    Ok(staff::Entity::find()
        .filter(condition)
        .order_by_asc(staff::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

pub async fn get_location(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<location::Model, ApiError> {
    location::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("location", id.to_string()))
}

pub async fn create_location(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: location::Model,
) -> Result<location::Model, ApiError> {
    let created = create_once(db, "CreateLocation", key, row.id, async |txn| {
        location::Entity::insert(row.into_active_model().reset_all())
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    })
    .await?;
    get_location(db, created.id()).await
}

pub async fn list_locations(
    db: &impl ConnectionTrait,
    page: &PageRequest,
) -> Result<Vec<location::Model>, ApiError> {
    let mut query = location::Entity::find();
    if let Some(after) = after_id(page)? {
        query = query.filter(location::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(location::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

pub async fn get_room(db: &impl ConnectionTrait, id: Uuid) -> Result<room::Model, ApiError> {
    room::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("room", id.to_string()))
}

pub async fn create_room(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: room::Model,
) -> Result<room::Model, ApiError> {
    get_location(db, row.location_id).await?;
    let created = create_once(db, "CreateRoom", key, row.id, async |txn| {
        room::Entity::insert(row.into_active_model().reset_all())
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    })
    .await?;
    get_room(db, created.id()).await
}

pub async fn list_rooms(
    db: &impl ConnectionTrait,
    location_id: Option<Uuid>,
    page: &PageRequest,
) -> Result<Vec<room::Model>, ApiError> {
    let mut query = room::Entity::find();
    if let Some(location_id) = location_id {
        query = query.filter(room::Column::LocationId.eq(location_id));
    }
    if let Some(after) = after_id(page)? {
        query = query.filter(room::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(room::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

pub async fn create_shift(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: duty_shift::Model,
) -> Result<duty_shift::Model, ApiError> {
    get_staff(db, row.staff_id).await?;
    let created: Created = create_once(db, "CreateDutyShift", key, row.id, async |txn| {
        duty_shift::Entity::insert(row.into_active_model().reset_all())
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    })
    .await?;
    duty_shift::Entity::find_by_id(created.id())
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("duty shift", created.id().to_string()))
}

/// Filters of ListDutyShifts.
#[derive(Debug, Default)]
pub struct ShiftFilter {
    pub staff_id: Option<Uuid>,
    /// Epoch seconds: only shifts covering this instant.
    pub on_duty_at: Option<i64>,
}

pub async fn list_shifts(
    db: &impl ConnectionTrait,
    filter: &ShiftFilter,
    page: &PageRequest,
) -> Result<Vec<duty_shift::Model>, ApiError> {
    let mut condition = Condition::all();
    if let Some(staff_id) = filter.staff_id {
        condition = condition.add(duty_shift::Column::StaffId.eq(staff_id));
    }
    if let Some(at) = filter.on_duty_at {
        condition = condition
            .add(duty_shift::Column::StartAt.lte(at))
            .add(duty_shift::Column::EndAt.gt(at));
    }
    if let Some(after) =
        super::after_start(page, duty_shift::Column::StartAt, duty_shift::Column::Id)?
    {
        condition = condition.add(after);
    }
    Ok(duty_shift::Entity::find()
        .filter(condition)
        .order_by_asc(duty_shift::Column::StartAt)
        .order_by_asc(duty_shift::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

/// Staff on duty at `at` (epoch seconds), each once.
pub async fn on_duty(db: &impl ConnectionTrait, at: i64) -> Result<Vec<staff::Model>, ApiError> {
    let shifts = duty_shift::Entity::find()
        .filter(duty_shift::Column::StartAt.lte(at))
        .filter(duty_shift::Column::EndAt.gt(at))
        .all(db)
        .await?;
    let mut ids: Vec<Uuid> = shifts.iter().map(|shift| shift.staff_id).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(staff::Entity::find()
        .filter(staff::Column::Id.is_in(ids))
        .order_by_asc(staff::Column::Id)
        .all(db)
        .await?)
}
