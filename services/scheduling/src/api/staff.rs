//! Staff members, locations, rooms and the rota.

use chrono::DateTime;
use medsec_platform::pagination::keys;
use medsec_platform::request::read_id;
use medsec_platform::time::to_timestamp;
use medsec_platform::{ApiError, Reader};
use medsec_proto::scheduling::v1 as pb;
use tonic::Request;

use super::SchedulingApi;
use crate::domain::span;
use crate::domain::staff::{
    LONGEST_SHIFT, MAX_GRADE_CHARS, NewDutyShift, NewLocation, NewRoom, NewStaffMember, check_role,
};
use crate::domain::text::{MAX_NAME_CHARS, MAX_TEXT_CHARS, optional_specialty, read_specialty};
use crate::domain::{Category, Role};
use crate::store::entities::{duty_shift, location, room, staff as staff_row};
use crate::store::staff::{self, ShiftFilter, StaffFilter};

/// Most specialties one clinician holds.
const MAX_SPECIALTIES: usize = 20;

pub(super) async fn create_member(
    api: &SchedulingApi,
    request: Request<pb::CreateStaffMemberRequest>,
) -> Result<pb::StaffMember, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let input = r.message("staff_member", request.staff_member.as_ref())?;
    let name = r.required_line("staff_member.name", &input.name, MAX_NAME_CHARS);
    let role = r.enumerated::<Role>("staff_member.role", input.role);
    let specialties = r.each(
        "staff_member.specialties",
        &input.specialties,
        MAX_SPECIALTIES,
        |r, field, s| read_specialty(r, field, s),
    );
    let skills = r.each(
        "staff_member.skills",
        &input.skills,
        Category::ALL.len(),
        |r, field, skill| r.enumerated::<Category>(field, *skill),
    );
    if let Some(role) = role {
        check_role(
            &mut r,
            "staff_member",
            role,
            &input.grade,
            input.specialties.len(),
        );
    }
    let grade = r.optional_line("staff_member.grade", &input.grade, MAX_GRADE_CHARS);
    let (name, role) = r.finish((name, role))?;
    let member = NewStaffMember {
        name,
        role,
        grade: (!grade.is_empty()).then_some(grade),
        specialties,
        skills,
        duty_manager: input.duty_manager,
    };
    let created = staff::create_staff(&api.db, key.as_ref(), member).await?;
    Ok(staff_to_proto(&created))
}

pub(super) async fn get_member(
    api: &SchedulingApi,
    request: Request<pb::GetStaffMemberRequest>,
) -> Result<pb::StaffMember, ApiError> {
    let id = read_id("id", &request.get_ref().id)?;
    Ok(staff_to_proto(&staff::get_staff(&api.db, id).await?))
}

pub(super) async fn list_members(
    api: &SchedulingApi,
    request: Request<pb::ListStaffMembersRequest>,
) -> Result<pb::ListStaffMembersResponse, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let filter = StaffFilter {
        role: r.optional_enum::<Role>("role", request.role),
        specialty: optional_specialty(&mut r, "specialty", &request.specialty),
    };
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("staff", &filter, size, token)?;
    let rows = staff::list_staff(&api.db, &filter, &page).await?;
    let (staff_members, next_page_token) = page.tail(rows, |row| keys::id(row.id), staff_to_proto);
    Ok(pb::ListStaffMembersResponse {
        staff_members,
        next_page_token,
    })
}

pub(crate) fn staff_to_proto(row: &staff_row::Model) -> pb::StaffMember {
    pb::StaffMember {
        id: row.id.to_string(),
        name: row.name.clone(),
        role: Role::stored_to_proto(&row.role),
        grade: row.grade.clone().unwrap_or_default(),
        specialties: row.specialty_list(),
        skills: row
            .skill_list()
            .into_iter()
            .map(Category::to_proto)
            .collect(),
        duty_manager: row.duty_manager,
        create_time: Some(to_timestamp(row.create_time)),
    }
}

pub(super) async fn create_location(
    api: &SchedulingApi,
    request: Request<pb::CreateLocationRequest>,
) -> Result<pb::Location, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let input = r.message("location", request.location.as_ref())?;
    let name = r.required_line("location.name", &input.name, MAX_NAME_CHARS);
    let address = r.optional_text("location.address", &input.address, MAX_TEXT_CHARS);
    let name = r.finish(name)?;
    let new = NewLocation { name, address };
    let created = staff::create_location(&api.db, key.as_ref(), new).await?;
    Ok(location_to_proto(&created))
}

fn location_to_proto(row: &location::Model) -> pb::Location {
    pb::Location {
        id: row.id.to_string(),
        name: row.name.clone(),
        address: row.address.clone(),
    }
}

pub(super) async fn list_locations(
    api: &SchedulingApi,
    request: Request<pb::ListLocationsRequest>,
) -> Result<pb::ListLocationsResponse, ApiError> {
    let request = request.into_inner();
    let r = Reader::new();
    let page = r.finish_page("locations", &(), request.page_size, &request.page_token)?;
    let rows = staff::list_locations(&api.db, &page).await?;
    let (locations, next_page_token) = page.tail(rows, |row| keys::id(row.id), location_to_proto);
    Ok(pb::ListLocationsResponse {
        locations,
        next_page_token,
    })
}

pub(super) async fn create_room(
    api: &SchedulingApi,
    request: Request<pb::CreateRoomRequest>,
) -> Result<pb::Room, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let input = r.message("room", request.room.as_ref())?;
    let location_id = r.id("room.location_id", &input.location_id);
    let name = r.required_line("room.name", &input.name, MAX_NAME_CHARS);
    let (location_id, name) = r.finish((location_id, name))?;
    let new = NewRoom { location_id, name };
    let created = staff::create_room(&api.db, key.as_ref(), new).await?;
    Ok(room_to_proto(&created))
}

fn room_to_proto(row: &room::Model) -> pb::Room {
    pb::Room {
        id: row.id.to_string(),
        location_id: row.location_id.to_string(),
        name: row.name.clone(),
    }
}

pub(super) async fn list_rooms(
    api: &SchedulingApi,
    request: Request<pb::ListRoomsRequest>,
) -> Result<pb::ListRoomsResponse, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let location_id = r.optional_id("location_id", &request.location_id);
    let page = r.finish_page(
        "rooms",
        &location_id,
        request.page_size,
        &request.page_token,
    )?;
    let rows = staff::list_rooms(&api.db, location_id, &page).await?;
    let (rooms, next_page_token) = page.tail(rows, |row| keys::id(row.id), room_to_proto);
    Ok(pb::ListRoomsResponse {
        rooms,
        next_page_token,
    })
}

pub(super) async fn create_shift(
    api: &SchedulingApi,
    request: Request<pb::CreateDutyShiftRequest>,
) -> Result<pb::DutyShift, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let input = r.message("duty_shift", request.duty_shift.as_ref())?;
    let staff_id = r.id("duty_shift.staff_member_id", &input.staff_member_id);
    let start = r.instant("duty_shift.start_time", input.start_time.as_ref());
    let end = r.instant("duty_shift.end_time", input.end_time.as_ref());
    span::ends_after(
        &mut r,
        "duty_shift.end_time",
        start,
        end,
        Some(LONGEST_SHIFT),
    );
    let (staff_id, start, end) = r.finish((staff_id, start, end))?;
    let shift = NewDutyShift {
        staff_id,
        start,
        end,
    };
    let created = staff::create_shift(&api.db, key.as_ref(), shift).await?;
    Ok(shift_to_proto(&created))
}

/// The `Timestamp` of epoch seconds, as the `*_at` columns hold instants.
pub(crate) fn epoch_to_proto(at: i64) -> Option<prost_types::Timestamp> {
    DateTime::from_timestamp(at, 0).map(to_timestamp)
}

fn shift_to_proto(row: &duty_shift::Model) -> pb::DutyShift {
    pb::DutyShift {
        id: row.id.to_string(),
        staff_member_id: row.staff_id.to_string(),
        start_time: epoch_to_proto(row.start_at),
        end_time: epoch_to_proto(row.end_at),
    }
}

pub(super) async fn list_shifts(
    api: &SchedulingApi,
    request: Request<pb::ListDutyShiftsRequest>,
) -> Result<pb::ListDutyShiftsResponse, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let filter = ShiftFilter {
        staff_id: r.optional_id("staff_member_id", &request.staff_member_id),
        on_duty_at: r
            .optional_instant("on_duty_at", request.on_duty_at.as_ref())
            .map(|at| at.timestamp()),
    };
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("shifts", &filter, size, token)?;
    let rows = staff::list_shifts(&api.db, &filter, &page).await?;
    let (duty_shifts, next_page_token) = page.tail(
        rows,
        |row| keys::then_id(&row.start_at, row.id),
        shift_to_proto,
    );
    Ok(pb::ListDutyShiftsResponse {
        duty_shifts,
        next_page_token,
    })
}
