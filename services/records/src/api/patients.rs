//! Patient register handlers.

use medsec_platform::idempotency::{self, RequestKey};
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::{format_civil_date, parse_civil_date, to_timestamp, today_in_london};
use medsec_platform::{ApiError, FieldViolations};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use super::context::{actor, parse_etag, parse_id, parse_uuid};
use crate::domain::postcode::parse_outward_code;
use crate::domain::{NhsNumber, PatientDetails, PatientPatch, Postcode, Sex};
use crate::store::entities::patient::Model as PatientRow;
use crate::store::patients::{self, PatientFilter, PostcodeFilter};

pub(super) async fn create(
    api: &RecordsApi,
    request: Request<pb::CreatePatientRequest>,
) -> Result<pb::Patient, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    let details = match &request.patient {
        Some(patient) => match PatientDetails::parse(patient, today_in_london()) {
            Ok(details) => Some(details),
            Err(bad) => {
                violations.extend(bad);
                None
            }
        },
        None => {
            violations.add("patient", "is required");
            None
        }
    };
    violations.into_result()?;
    let details = details.ok_or_else(|| ApiError::invalid("patient", "is required"))?;

    let key = RequestKey::of(&request.request_id, &request, |r| r.request_id.clear());
    let created = patients::create(&api.db, details, key, &actor).await?;
    Ok(to_proto(&created))
}

pub(super) async fn get(
    api: &RecordsApi,
    request: Request<pb::GetPatientRequest>,
) -> Result<pb::Patient, ApiError> {
    let actor = actor(&request);
    let id = parse_id("id", &request.get_ref().id)?;
    Ok(to_proto(&patients::get(&api.db, id, &actor).await?))
}

pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListPatientsRequest>,
) -> Result<pb::ListPatientsResponse, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let filter = parse_filter(&request)?;
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &filter.fingerprint(),
    )?;
    let mut rows = patients::list(&api.db, &filter, &page, &actor).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListPatientsResponse {
        patients: rows.iter().map(to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn update(
    api: &RecordsApi,
    request: Request<pb::UpdatePatientRequest>,
) -> Result<pb::Patient, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let Some(patient) = &request.patient else {
        return Err(ApiError::invalid("patient", "is required"));
    };
    let paths = request
        .update_mask
        .as_ref()
        .map(|mask| mask.paths.clone())
        .unwrap_or_default();
    let mut violations = FieldViolations::default();
    let id = violations.check("patient.id", parse_uuid(&patient.id));
    let revision = violations.check("patient.etag", parse_etag(&patient.etag));
    let patch = match PatientPatch::parse(patient, &paths, today_in_london()) {
        Ok(patch) => Some(patch),
        Err(bad) => {
            violations.extend(bad);
            None
        }
    };
    violations.into_result()?;
    let (Some(id), Some(revision), Some(patch)) = (id, revision, patch) else {
        return Err(ApiError::invalid("patient", "is invalid"));
    };
    let updated = patients::update(
        &api.db,
        id,
        revision,
        |details| details.apply(patch),
        &actor,
    )
    .await?;
    Ok(to_proto(&updated))
}

pub(super) async fn archive(
    api: &RecordsApi,
    request: Request<pb::ArchivePatientRequest>,
) -> Result<pb::Patient, ApiError> {
    let actor = actor(&request);
    let request = request.get_ref();
    let mut violations = FieldViolations::default();
    let id = violations.check("id", parse_uuid(&request.id));
    let revision = violations.check("etag", parse_etag(&request.etag));
    violations.into_result()?;
    let (Some(id), Some(revision)) = (id, revision) else {
        return Err(ApiError::invalid("id", "is invalid"));
    };
    Ok(to_proto(
        &patients::archive(&api.db, id, revision, &actor).await?,
    ))
}

fn parse_filter(request: &pb::ListPatientsRequest) -> Result<PatientFilter, ApiError> {
    let mut violations = FieldViolations::default();
    let mut filter = PatientFilter {
        include_archived: request.include_archived,
        ..PatientFilter::default()
    };
    if !request.nhs_number.is_empty() {
        filter.nhs_number = violations.check("nhs_number", NhsNumber::parse(&request.nhs_number));
    }
    let prefix = request.family_name_prefix.trim();
    if !prefix.is_empty() {
        filter.family_name_prefix = Some(prefix.to_lowercase());
    }
    if !request.birth_date.is_empty() {
        filter.birth_date = violations.check(
            "birth_date",
            parse_civil_date(&request.birth_date).ok_or("must be a date in the form YYYY-MM-DD"),
        );
    }
    if !request.postcode.trim().is_empty() {
        filter.postcode = match Postcode::parse(&request.postcode) {
            Ok(postcode) => Some(PostcodeFilter::Exact(postcode)),
            Err(_) => violations.check(
                "postcode",
                parse_outward_code(&request.postcode)
                    .map(PostcodeFilter::District)
                    .ok_or("must be a UK postcode or an outward code (e.g. SW1A 1AA or SW1A)"),
            ),
        };
    }
    violations.into_result()?;
    Ok(filter)
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
            lines: row
                .address_lines
                .as_deref()
                .filter(|lines| !lines.is_empty())
                .map(|lines| lines.split('\n').map(str::to_owned).collect())
                .unwrap_or_default(),
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
