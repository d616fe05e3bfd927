//! Test catalogue and specimen handlers.

use chrono::Utc;
use medsec_platform::idempotency::{self, RequestKey};
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::{from_timestamp, to_timestamp};
use medsec_platform::{ApiError, FieldViolations};
use medsec_proto::records::v1 as pb;
use tonic::Request;
use uuid::Uuid;

use super::RecordsApi;
use super::context::{actor, parse_etag, parse_id, parse_uuid};
use crate::domain::specimens::{SpecimenState, parse_test_code};
use crate::store::specimens::{self, SpecimenRecord, TransitionData, test_type};
use medsec_platform::text;

pub(super) async fn create_test_type(
    api: &RecordsApi,
    request: Request<pb::CreateTestTypeRequest>,
) -> Result<pb::TestType, ApiError> {
    let request = request.into_inner();
    let Some(test) = request.test_type.clone() else {
        return Err(ApiError::invalid("test_type", "is required"));
    };
    let mut violations = FieldViolations::default();
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    let code = violations.check("test_type.code", parse_test_code(&test.code));
    let name = violations.check("test_type.name", text::required_line(&test.name, 200));
    let specimen_type = violations.check(
        "test_type.specimen_type",
        text::required_line(&test.specimen_type, 100),
    );
    if !(1..=24 * 365).contains(&test.turnaround_hours) {
        violations.add("test_type.turnaround_hours", "must be 1 to 8760 hours");
    }
    violations.into_result()?;
    let (Some(code), Some(name), Some(specimen_type)) = (code, name, specimen_type) else {
        return Err(ApiError::invalid("test_type", "is invalid"));
    };
    let row = specimens::create_test_type(
        &api.db,
        test_type::Model {
            code,
            name,
            specimen_type,
            turnaround_hours: test.turnaround_hours,
            create_time: Utc::now(),
        },
        RequestKey::of(&request.request_id, &request, |r| r.request_id.clear()),
    )
    .await?;
    Ok(test_type_to_proto(row))
}

pub(super) async fn list_test_types(
    api: &RecordsApi,
    request: Request<pb::ListTestTypesRequest>,
) -> Result<pb::ListTestTypesResponse, ApiError> {
    let request = request.into_inner();
    let page = PageRequest::parse(request.page_size, &request.page_token, "")?;
    let mut rows = specimens::list_test_types(&api.db, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.code.clone());
    Ok(pb::ListTestTypesResponse {
        test_types: rows.into_iter().map(test_type_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn request(
    api: &RecordsApi,
    request: Request<pb::RequestSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    let patient_id = violations.check("patient_id", parse_uuid(&request.patient_id));
    let test_code = violations.check("test_code", parse_test_code(&request.test_code));
    let notes = violations.check("notes", text::optional(&request.notes, 2000));
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    violations.into_result()?;
    let (Some(patient_id), Some(test_code), Some(notes)) = (patient_id, test_code, notes) else {
        return Err(ApiError::invalid("patient_id", "is invalid"));
    };
    let key = RequestKey::of(&request.request_id, &request, |r| r.request_id.clear());
    let record = specimens::request(&api.db, patient_id, &test_code, notes, key, &actor).await?;
    Ok(to_proto(&record))
}

/// The id and etag every transition request carries.
fn target(id: &str, etag: &str, violations: &mut FieldViolations) -> Option<(Uuid, Option<i64>)> {
    let id = violations.check("id", parse_uuid(id));
    let revision = violations.check("etag", parse_etag(etag));
    Some((id?, revision?))
}

/// A move that records nothing but the step itself.
async fn plain_move(
    api: &RecordsApi,
    actor: &crate::store::audit::Actor,
    id: &str,
    etag: &str,
    to: SpecimenState,
    action: &'static str,
) -> Result<pb::Specimen, ApiError> {
    let mut violations = FieldViolations::default();
    let target = target(id, etag, &mut violations);
    violations.into_result()?;
    let target = target.ok_or_else(|| ApiError::invalid("id", "is invalid"))?;
    move_to(api, actor, target, to, TransitionData::default(), action).await
}

async fn move_to(
    api: &RecordsApi,
    actor: &crate::store::audit::Actor,
    (id, revision): (Uuid, Option<i64>),
    to: SpecimenState,
    data: TransitionData,
    action: &'static str,
) -> Result<pb::Specimen, ApiError> {
    let record = specimens::transition(&api.db, id, revision, to, data, action, actor).await?;
    Ok(to_proto(&record))
}

pub(super) async fn collect(
    api: &RecordsApi,
    request: Request<pb::CollectSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = actor(&request);
    let r = request.get_ref();
    plain_move(
        api,
        &actor,
        &r.id,
        &r.etag,
        SpecimenState::Collected,
        "CollectSpecimen",
    )
    .await
}

pub(super) async fn dispatch(
    api: &RecordsApi,
    request: Request<pb::DispatchSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = actor(&request);
    let r = request.get_ref();
    let mut violations = FieldViolations::default();
    let target = target(&r.id, &r.etag, &mut violations);
    let courier = violations.check("courier", text::required_line(&r.courier, 100));
    let lab = violations.check("lab", text::required_line(&r.lab, 200));
    let tracking = violations.check(
        "tracking_reference",
        text::required_line(&r.tracking_reference, 100),
    );
    violations.into_result()?;
    let (Some(target), Some(courier), Some(lab), Some(tracking)) = (target, courier, lab, tracking)
    else {
        return Err(ApiError::invalid("id", "is invalid"));
    };
    let data = TransitionData {
        details: format!("courier={courier}; lab={lab}; tracking={tracking}"),
        courier: Some(courier),
        lab: Some(lab),
        tracking_reference: Some(tracking),
        ..TransitionData::default()
    };
    move_to(
        api,
        &actor,
        target,
        SpecimenState::Dispatched,
        data,
        "DispatchSpecimen",
    )
    .await
}

pub(super) async fn receive(
    api: &RecordsApi,
    request: Request<pb::ReceiveSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = actor(&request);
    let r = request.get_ref();
    plain_move(
        api,
        &actor,
        &r.id,
        &r.etag,
        SpecimenState::Received,
        "ReceiveSpecimen",
    )
    .await
}

pub(super) async fn result(
    api: &RecordsApi,
    request: Request<pb::ResultSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = actor(&request);
    let r = request.get_ref();
    let mut violations = FieldViolations::default();
    let target = target(&r.id, &r.etag, &mut violations);
    let summary = violations.check("summary", text::required(&r.summary, 5000));
    let document_id = if r.document_id.is_empty() {
        Some(None)
    } else {
        violations
            .check("document_id", parse_uuid(&r.document_id))
            .map(Some)
    };
    violations.into_result()?;
    let (Some(target), Some(summary), Some(document_id)) = (target, summary, document_id) else {
        return Err(ApiError::invalid("id", "is invalid"));
    };
    let data = TransitionData {
        details: format!(
            "abnormal={}{}",
            r.abnormal,
            document_id
                .map(|d| format!("; document={d}"))
                .unwrap_or_default()
        ),
        result_summary: Some(summary),
        abnormal: Some(r.abnormal),
        result_document_id: document_id,
        ..TransitionData::default()
    };
    move_to(
        api,
        &actor,
        target,
        SpecimenState::Resulted,
        data,
        "ResultSpecimen",
    )
    .await
}

pub(super) async fn reject(
    api: &RecordsApi,
    request: Request<pb::RejectSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = actor(&request);
    let r = request.get_ref();
    let mut violations = FieldViolations::default();
    let target = target(&r.id, &r.etag, &mut violations);
    let reason = violations.check("reason", text::required_line(&r.reason, 500));
    violations.into_result()?;
    let (Some(target), Some(reason)) = (target, reason) else {
        return Err(ApiError::invalid("id", "is invalid"));
    };
    let data = TransitionData {
        details: format!("reason={reason}"),
        rejection_reason: Some(reason),
        ..TransitionData::default()
    };
    move_to(
        api,
        &actor,
        target,
        SpecimenState::Rejected,
        data,
        "RejectSpecimen",
    )
    .await
}

pub(super) async fn get(
    api: &RecordsApi,
    request: Request<pb::GetSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = actor(&request);
    let id = parse_id("id", &request.get_ref().id)?;
    Ok(to_proto(&specimens::get(&api.db, id, &actor).await?))
}

pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListSpecimensRequest>,
) -> Result<pb::ListSpecimensResponse, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    let patient_id = violations.check("patient_id", parse_uuid(&request.patient_id));
    let state = match request.state {
        0 => Some(None),
        state => violations
            .check("state", SpecimenState::from_proto(state))
            .map(Some),
    };
    violations.into_result()?;
    let (Some(patient_id), Some(state)) = (patient_id, state) else {
        return Err(ApiError::invalid("patient_id", "is invalid"));
    };
    let fingerprint = format!("{patient_id}/{state:?}");
    let page = PageRequest::parse(request.page_size, &request.page_token, &fingerprint)?;
    let mut records =
        specimens::list_for_patient(&api.db, patient_id, state, &page, &actor).await?;
    let next_page_token = page.finish(&mut records, |r| r.specimen.id.to_string());
    Ok(pb::ListSpecimensResponse {
        specimens: records.iter().map(to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn list_overdue(
    api: &RecordsApi,
    request: Request<pb::ListOverdueSpecimensRequest>,
) -> Result<pb::ListSpecimensResponse, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let as_of = match &request.as_of {
        Some(timestamp) => from_timestamp(timestamp)
            .ok_or_else(|| ApiError::invalid("as_of", "is not a valid timestamp"))?,
        None => Utc::now(),
    };
    let fingerprint = as_of.to_rfc3339();
    let page = PageRequest::parse(request.page_size, &request.page_token, &fingerprint)?;
    let mut records = specimens::list_overdue(&api.db, as_of, &page, &actor).await?;
    let next_page_token = page.finish(&mut records, |r| specimens::overdue_key(&r.specimen));
    Ok(pb::ListSpecimensResponse {
        specimens: records.iter().map(to_proto).collect(),
        next_page_token,
    })
}

fn test_type_to_proto(row: test_type::Model) -> pb::TestType {
    pb::TestType {
        code: row.code,
        name: row.name,
        specimen_type: row.specimen_type,
        turnaround_hours: row.turnaround_hours,
    }
}

fn state_to_proto(stored: &str) -> i32 {
    SpecimenState::stored_to_proto(stored)
}

fn to_proto(record: &SpecimenRecord) -> pb::Specimen {
    let s = &record.specimen;
    pb::Specimen {
        id: s.id.to_string(),
        patient_id: s.patient_id.to_string(),
        test_code: s.test_code.clone(),
        state: state_to_proto(&s.state),
        notes: s.notes.clone(),
        courier: s.courier.clone().unwrap_or_default(),
        lab: s.lab.clone().unwrap_or_default(),
        tracking_reference: s.tracking_reference.clone().unwrap_or_default(),
        result_summary: s.result_summary.clone().unwrap_or_default(),
        abnormal: s.abnormal,
        result_document_id: s
            .result_document_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        rejection_reason: s.rejection_reason.clone().unwrap_or_default(),
        dispatch_time: s.dispatch_time.map(to_timestamp),
        due_time: s.due_time.map(to_timestamp),
        events: record
            .events
            .iter()
            .map(|e| pb::SpecimenEvent {
                state: state_to_proto(&e.state),
                time: Some(to_timestamp(e.time)),
                actor: e.actor.clone(),
                details: e.details.clone(),
            })
            .collect(),
        etag: s.revision.to_string(),
    }
}
