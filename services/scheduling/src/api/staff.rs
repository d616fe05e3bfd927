//! Staff members, locations, rooms and the rota.

use chrono::{DateTime, Utc};
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::to_timestamp;
use medsec_proto::scheduling::v1 as pb;

use super::SchedulingApi;
use prost::Message as _;
use tonic::Request;
use uuid::Uuid;

use super::convert::{Reader, present, request_key};
use crate::domain::{Category, Role, text};
use crate::store::entities::{duty_shift, location, room, staff as staff_row};
use crate::store::{join_list, split_list, staff};

pub(super) async fn create_member(
    api: &SchedulingApi,
    request: Request<pb::CreateStaffMemberRequest>,
) -> Result<pb::StaffMember, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let input = request.staff_member.clone().unwrap_or_default();
    if request.staff_member.is_none() {
        return Err(ApiError::invalid("staff_member", "is required"));
    }
    let name = r.check("staff_member.name", text::name(&input.name));
    let role = r.check("staff_member.role", Role::from_proto(input.role));
    let mut specialties = Vec::new();
    for (i, specialty) in input.specialties.iter().enumerate() {
        if let Some(s) = r.check(
            &format!("staff_member.specialties[{i}]"),
            text::specialty(specialty),
        ) && !specialties.contains(&s)
        {
            specialties.push(s);
        }
    }
    let mut skills = Vec::new();
    for (i, skill) in input.skills.iter().enumerate() {
        if let Some(s) = r.check(
            &format!("staff_member.skills[{i}]"),
            Category::from_proto(*skill),
        ) && !skills.contains(&s)
        {
            skills.push(s);
        }
    }
    let grade = input.grade.trim().to_owned();
    if role == Some(Role::Clinician) {
        if grade.is_empty() {
            r.add("staff_member.grade", "is required for a clinician");
        }
        if input.specialties.is_empty() {
            r.add("staff_member.specialties", "a clinician needs at least one");
        }
    } else if role.is_some() && !input.specialties.is_empty() {
        r.add(
            "staff_member.specialties",
            "only clinicians have specialties",
        );
    }
    if grade.chars().count() > 100 {
        r.add("staff_member.grade", "must be at most 100 characters");
    }
    r.finish()?;
    let (name, role) = (
        present(name, "staff_member.name")?,
        present(role, "staff_member.role")?,
    );
    let key = request_key(
        &request.request_id,
        pb::CreateStaffMemberRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let row = staff_row::Model {
        id: Uuid::now_v7(),
        name,
        role: role.as_str().to_owned(),
        grade: (!grade.is_empty()).then_some(grade),
        specialties: join_list(specialties.iter().map(String::as_str)),
        skills: join_list(skills.iter().map(|s| s.as_str())),
        duty_manager: input.duty_manager,
        create_time: Utc::now(),
        revision: 1,
    };
    let created = staff::create_staff(db, key.as_ref(), row).await?;
    Ok(staff_to_proto(&created))
}

pub(super) async fn get_member(
    api: &SchedulingApi,
    request: Request<pb::GetStaffMemberRequest>,
) -> Result<pb::StaffMember, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    r.finish()?;
    Ok(staff_to_proto(
        &staff::get_staff(db, present(id, "id")?).await?,
    ))
}

pub(super) async fn list_members(
    api: &SchedulingApi,
    request: Request<pb::ListStaffMembersRequest>,
) -> Result<pb::ListStaffMembersResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let role = r
        .check("role", Role::from_proto_optional(request.role))
        .flatten();
    let specialty = if request.specialty.is_empty() {
        None
    } else {
        r.check("specialty", text::specialty(&request.specialty))
    };
    r.finish()?;
    let filter = staff::StaffFilter {
        role: role.map(|r| r.as_str().to_owned()),
        specialty,
    };
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("role={:?};specialty={:?}", filter.role, filter.specialty),
    )?;
    let mut rows = staff::list_staff(db, &filter, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListStaffMembersResponse {
        staff_members: rows.iter().map(staff_to_proto).collect(),
        next_page_token,
    })
}

pub(crate) fn staff_to_proto(row: &staff_row::Model) -> pb::StaffMember {
    pb::StaffMember {
        id: row.id.to_string(),
        name: row.name.clone(),
        role: Role::stored_to_proto(&row.role),
        grade: row.grade.clone().unwrap_or_default(),
        specialties: split_list(&row.specialties),
        skills: split_list(&row.skills)
            .iter()
            .map(|s| Category::stored_to_proto(s))
            .collect(),
        duty_manager: row.duty_manager,
        create_time: Some(to_timestamp(row.create_time)),
    }
}

pub(super) async fn create_location(
    api: &SchedulingApi,
    request: Request<pb::CreateLocationRequest>,
) -> Result<pb::Location, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let input = request.location.clone().unwrap_or_default();
    if request.location.is_none() {
        return Err(ApiError::invalid("location", "is required"));
    }
    let name = r.check("location.name", text::name(&input.name));
    let address = r.check("location.address", text::free_text(&input.address));
    r.finish()?;
    let key = request_key(
        &request.request_id,
        pb::CreateLocationRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let row = location::Model {
        id: Uuid::now_v7(),
        name: present(name, "location.name")?,
        address: address.unwrap_or_default(),
        create_time: Utc::now(),
    };
    let created = staff::create_location(db, key.as_ref(), row).await?;
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
    let db = &api.db;
    let request = request.into_inner();
    let page = PageRequest::parse(request.page_size, &request.page_token, "locations")?;
    let mut rows = staff::list_locations(db, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListLocationsResponse {
        locations: rows.iter().map(location_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn create_room(
    api: &SchedulingApi,
    request: Request<pb::CreateRoomRequest>,
) -> Result<pb::Room, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let input = request.room.clone().unwrap_or_default();
    if request.room.is_none() {
        return Err(ApiError::invalid("room", "is required"));
    }
    let location_id = r.id("room.location_id", &input.location_id);
    let name = r.check("room.name", text::name(&input.name));
    r.finish()?;
    let key = request_key(
        &request.request_id,
        pb::CreateRoomRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let row = room::Model {
        id: Uuid::now_v7(),
        location_id: present(location_id, "room.location_id")?,
        name: present(name, "room.name")?,
        create_time: Utc::now(),
    };
    let created = staff::create_room(db, key.as_ref(), row).await?;
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
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let location_id = r.optional_id("location_id", &request.location_id);
    r.finish()?;
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("location={location_id:?}"),
    )?;
    let mut rows = staff::list_rooms(db, location_id, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListRoomsResponse {
        rooms: rows.iter().map(room_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn create_shift(
    api: &SchedulingApi,
    request: Request<pb::CreateDutyShiftRequest>,
) -> Result<pb::DutyShift, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let input = request.duty_shift.clone().unwrap_or_default();
    if request.duty_shift.is_none() {
        return Err(ApiError::invalid("duty_shift", "is required"));
    }
    let staff_id = r.id("duty_shift.staff_member_id", &input.staff_member_id);
    let start = r.instant("duty_shift.start_time", input.start_time.as_ref());
    let end = r.instant("duty_shift.end_time", input.end_time.as_ref());
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            r.add("duty_shift.end_time", "must be after start_time");
        } else if end - start > chrono::Duration::hours(24) {
            r.add("duty_shift.end_time", "a shift lasts at most 24 hours");
        }
    }
    r.finish()?;
    let key = request_key(
        &request.request_id,
        pb::CreateDutyShiftRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let row = duty_shift::Model {
        id: Uuid::now_v7(),
        staff_id: present(staff_id, "duty_shift.staff_member_id")?,
        start_at: present(start, "duty_shift.start_time")?.timestamp(),
        end_at: present(end, "duty_shift.end_time")?.timestamp(),
        create_time: Utc::now(),
    };
    let created = staff::create_shift(db, key.as_ref(), row).await?;
    Ok(shift_to_proto(&created))
}

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
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let staff_id = r.optional_id("staff_member_id", &request.staff_member_id);
    let at = r.optional_instant("on_duty_at", request.on_duty_at.as_ref());
    r.finish()?;
    let filter = staff::ShiftFilter {
        staff_id,
        on_duty_at: at.map(|at| at.timestamp()),
    };
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("{filter:?}"),
    )?;
    let mut rows = staff::list_shifts(db, &filter, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| {
        crate::store::start_key(row.start_at, row.id)
    });
    Ok(pb::ListDutyShiftsResponse {
        duty_shifts: rows.iter().map(shift_to_proto).collect(),
        next_page_token,
    })
}
