//! Patient register handlers.

use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::request::read_id;
use medsec_platform::time::{format_civil_date, to_timestamp, today_in_london};
use medsec_platform::{ApiError, Reader};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use crate::domain::{NhsNumber, PatientDetails, PatientPatch, PostcodeFilter, Sex};
use crate::store::entities::patient::Model as PatientRow;
use crate::store::patients::{self, PatientFilter};

pub(super) async fn create(
    api: &RecordsApi,
    request: Request<pb::CreatePatientRequest>,
) -> Result<pb::Patient, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let patient = r.message("patient", request.patient.as_ref())?;
    let details = PatientDetails::read(&mut r, patient, today_in_london());
    let details = r.finish(details)?;
    let created = patients::create(&api.db, details, key.as_ref(), &actor).await?;
    Ok(to_proto(&created))
}

pub(super) async fn get(
    api: &RecordsApi,
    request: Request<pb::GetPatientRequest>,
) -> Result<pb::Patient, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
    Ok(to_proto(&patients::get(&api.db, id, &actor).await?))
}

pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListPatientsRequest>,
) -> Result<pb::ListPatientsResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let filter = PatientFilter {
        nhs_number: present(&request.nhs_number)
            .and_then(|number| r.check("nhs_number", NhsNumber::parse(number))),
        family_name_prefix: r.filter("family_name_prefix", &request.family_name_prefix, 100),
        birth_date: r.optional_date("birth_date", &request.birth_date),
        postcode: present(&request.postcode)
            .and_then(|postcode| r.check("postcode", PostcodeFilter::parse(postcode))),
        include_archived: request.include_archived,
    };
    let page = r.page(
        request.page_size,
        &request.page_token,
        &filter.fingerprint(),
    );
    let page = r.finish(page)?;
    let rows = patients::list(&api.db, &filter, &page, &actor).await?;
    let (patients, next_page_token) = page.tail(rows, |row| keys::id(row.id), to_proto);
    Ok(pb::ListPatientsResponse {
        patients,
        next_page_token,
    })
}

pub(super) async fn update(
    api: &RecordsApi,
    request: Request<pb::UpdatePatientRequest>,
) -> Result<pb::Patient, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let patient = r.message("patient", request.patient.as_ref())?;
    let id = r.id("patient.id", &patient.id);
    let revision = r.etag("patient.etag", &patient.etag);
    let patch = r
        .mask_paths(request.update_mask.as_ref())
        .map(|paths| PatientPatch::read(&mut r, patient, paths, today_in_london()))
        .unwrap_or_default();
    let id = r.finish(id)?;
    let updated = patients::update(&api.db, id, revision, patch, &actor).await?;
    Ok(to_proto(&updated))
}

pub(super) async fn archive(
    api: &RecordsApi,
    request: Request<pb::ArchivePatientRequest>,
) -> Result<pb::Patient, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let revision = r.etag("etag", &request.etag);
    let id = r.finish(id)?;
    let archived = patients::archive(&api.db, id, revision, &actor).await?;
    Ok(to_proto(&archived))
}

/// A filter's text when one is given.
fn present(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

pub(super) fn to_proto(row: &PatientRow) -> pb::Patient {
    pb::Patient {
        id: row.id.to_string(),
        nhs_number: row.nhs_number.clone(),
        given_name: row.given_name.clone(),
        family_name: row.family_name.clone(),
        birth_date: format_civil_date(row.birth_date),
        sex: Sex::stored_to_proto(&row.sex),
        address: row.address_postcode.as_ref().map(|postcode| pb::Address {
            lines: patients::address_lines(row),
            town: row.address_town.clone().unwrap_or_default(),
            postcode: postcode.clone(),
        }),
        phone: row.phone.clone().unwrap_or_default(),
        email: row.email.clone().unwrap_or_default(),
        gp_practice: row.gp_ods_code.as_ref().map(|code| pb::GpPractice {
            ods_code: code.clone(),
            name: row.gp_name.clone().unwrap_or_default(),
        }),
        state: if row.archive_time.is_some() {
            pb::PatientState::Archived
        } else {
            pb::PatientState::Active
        } as i32,
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        archive_time: row.archive_time.map(to_timestamp),
        etag: row.revision.to_string(),
    }
}
