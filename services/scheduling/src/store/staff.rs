//! Staff members, locations, rooms and the duty rota.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::db::escape_like;
use medsec_platform::idempotency::RequestKey;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, LikeExpr};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection, EntityTrait as _,
    QueryFilter as _, QueryTrait as _,
};
use uuid::Uuid;

use super::entities::{duty_shift, join_list, location, room, staff};
use super::{create_row, get_row};
use crate::domain::Role;
use crate::domain::staff::{NewDutyShift, NewLocation, NewRoom, NewStaffMember};

pub async fn get_staff(db: &impl ConnectionTrait, id: Uuid) -> Result<staff::Model, ApiError> {
    get_row::<staff::Entity>(db, "staff member", id).await
}

pub async fn create_staff(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    member: NewStaffMember,
) -> Result<staff::Model, ApiError> {
    let no_references = async |_: &_| Ok(());
    create_row::<staff::Entity>(
        db,
        "CreateStaffMember",
        key,
        "staff member",
        no_references,
        |id| staff::Model {
            id,
            name: member.name,
            role: member.role.as_str().to_owned(),
            grade: member.grade,
            specialties: join_list(member.specialties.iter().map(String::as_str)),
            skills: join_list(member.skills.iter().map(|skill| skill.as_str())),
            duty_manager: member.duty_manager,
            create_time: Utc::now(),
            revision: 1,
        },
    )
    .await
}

/// Filters of ListStaffMembers.
#[derive(Debug, Default)]
pub struct StaffFilter {
    pub role: Option<Role>,
    pub specialty: Option<String>,
}

pub async fn list_staff(
    db: &impl ConnectionTrait,
    filter: &StaffFilter,
    page: &PageRequest,
) -> Result<Vec<staff::Model>, ApiError> {
    let has_specialty = |specialty: &String| {
        let member = LikeExpr::new(format!("%,{},%", escape_like(specialty))).escape('\\');
        Expr::col(staff::Column::Specialties).like(member)
    };
    let query = staff::Entity::find().filter(
        Condition::all()
            .add_option(
                filter
                    .role
                    .map(|role| staff::Column::Role.eq(role.as_str())),
            )
            .add_option(filter.specialty.as_ref().map(has_specialty)),
    );
    Ok(page.by_id(query, staff::Column::Id)?.all(db).await?)
}

pub async fn get_location(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<location::Model, ApiError> {
    get_row::<location::Entity>(db, "location", id).await
}

pub async fn create_location(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    new: NewLocation,
) -> Result<location::Model, ApiError> {
    let no_references = async |_: &_| Ok(());
    create_row::<location::Entity>(db, "CreateLocation", key, "location", no_references, |id| {
        location::Model {
            id,
            name: new.name,
            address: new.address,
            create_time: Utc::now(),
        }
    })
    .await
}

pub async fn list_locations(
    db: &impl ConnectionTrait,
    page: &PageRequest,
) -> Result<Vec<location::Model>, ApiError> {
    let query = location::Entity::find();
    Ok(page.by_id(query, location::Column::Id)?.all(db).await?)
}

pub async fn get_room(db: &impl ConnectionTrait, id: Uuid) -> Result<room::Model, ApiError> {
    get_row::<room::Entity>(db, "room", id).await
}

/// Adds a room to an existing location.
pub async fn create_room(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    new: NewRoom,
) -> Result<room::Model, ApiError> {
    let location_id = new.location_id;
    let location_exists = async |txn: &_| get_location(txn, location_id).await.map(drop);
    create_row::<room::Entity>(db, "CreateRoom", key, "room", location_exists, |id| {
        room::Model {
            id,
            location_id,
            name: new.name,
            create_time: Utc::now(),
        }
    })
    .await
}

pub async fn list_rooms(
    db: &impl ConnectionTrait,
    location_id: Option<Uuid>,
    page: &PageRequest,
) -> Result<Vec<room::Model>, ApiError> {
    let query = room::Entity::find().apply_if(location_id, |query, id| {
        query.filter(room::Column::LocationId.eq(id))
    });
    Ok(page.by_id(query, room::Column::Id)?.all(db).await?)
}

/// Puts an existing staff member on duty.
pub async fn create_shift(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    shift: NewDutyShift,
) -> Result<duty_shift::Model, ApiError> {
    let staff_id = shift.staff_id;
    let member_exists = async |txn: &_| get_staff(txn, staff_id).await.map(drop);
    create_row::<duty_shift::Entity>(
        db,
        "CreateDutyShift",
        key,
        "duty shift",
        member_exists,
        |id| duty_shift::Model {
            id,
            staff_id,
            start_at: shift.start.timestamp(),
            end_at: shift.end.timestamp(),
            create_time: Utc::now(),
        },
    )
    .await
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
    let query = duty_shift::Entity::find().filter(
        Condition::all()
            .add_option(filter.staff_id.map(|id| duty_shift::Column::StaffId.eq(id)))
            .add_option(filter.on_duty_at.map(on_duty_at)),
    );
    Ok(page
        .by_then_id::<_, _, _, i64>(query, duty_shift::Column::StartAt, duty_shift::Column::Id)?
        .all(db)
        .await?)
}

/// Shifts covering the instant `at` (epoch seconds).
pub(super) fn on_duty_at(at: i64) -> Condition {
    Condition::all()
        .add(duty_shift::Column::StartAt.lte(at))
        .add(duty_shift::Column::EndAt.gt(at))
}
