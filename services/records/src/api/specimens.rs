//! Test catalogue and specimen handlers.

use chrono::{DateTime, Utc};
use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::request::read_id;
use medsec_platform::time::to_timestamp;
use medsec_platform::{ApiError, Reader};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use crate::domain::specimens::{NewSpecimen, NewTestType, SpecimenState, Step, parse_test_code};
use crate::store::entities::test_type::Model as TestTypeRow;
use crate::store::specimens::{self, SpecimenRecord};

pub(super) async fn create_test_type(
    api: &RecordsApi,
    request: Request<pb::CreateTestTypeRequest>,
) -> Result<pb::TestType, ApiError> {
    let request = request.get_ref();
    let mut r = Reader::new();
    let test = r.message("test_type", request.test_type.as_ref())?;
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let new = NewTestType::read(&mut r, test);
    let new = r.finish(new)?;
    let row = specimens::create_test_type(&api.db, new, key.as_ref()).await?;
    Ok(test_type_to_proto(&row))
}

pub(super) async fn list_test_types(
    api: &RecordsApi,
    request: Request<pb::ListTestTypesRequest>,
) -> Result<pb::ListTestTypesResponse, ApiError> {
    let request = request.get_ref();
    let page = Reader::new().finish_page("", &(), request.page_size, &request.page_token)?;
    let rows = specimens::list_test_types(&api.db, &page).await?;
    let (test_types, next_page_token) = page.tail(rows, |row| row.code.clone(), test_type_to_proto);
    Ok(pb::ListTestTypesResponse {
        test_types,
        next_page_token,
    })
}

pub(super) async fn request(
    api: &RecordsApi,
    request: Request<pb::RequestSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let patient_id = r.id("patient_id", &request.patient_id);
    let test_code = r.check("test_code", parse_test_code(&request.test_code));
    let notes = r.optional_text("notes", &request.notes, 2000);
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let (patient_id, test_code) = r.finish((patient_id, test_code))?;
    let new = NewSpecimen {
        patient_id,
        test_code,
        notes,
    };
    let record = specimens::request(&api.db, new, key.as_ref(), &actor).await?;
    Ok(to_proto(&record))
}

pub(super) async fn collect(
    api: &RecordsApi,
    request: Request<pb::CollectSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let q = request.get_ref();
    take(api, &request, &q.id, &q.etag, |_| Some(Step::Collect)).await
}

pub(super) async fn dispatch(
    api: &RecordsApi,
    request: Request<pb::DispatchSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let q = request.get_ref();
    take(api, &request, &q.id, &q.etag, |r| {
        let courier = r.required_line("courier", &q.courier, 100);
        let lab = r.required_line("lab", &q.lab, 200);
        let tracking = r.required_line("tracking_reference", &q.tracking_reference, 100);
        Some(Step::Dispatch {
            courier: courier?,
            lab: lab?,
            tracking_reference: tracking?,
        })
    })
    .await
}

pub(super) async fn receive(
    api: &RecordsApi,
    request: Request<pb::ReceiveSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let q = request.get_ref();
    take(api, &request, &q.id, &q.etag, |_| Some(Step::Receive)).await
}

pub(super) async fn result(
    api: &RecordsApi,
    request: Request<pb::ResultSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let q = request.get_ref();
    take(api, &request, &q.id, &q.etag, |r| {
        let summary = r.required_text("summary", &q.summary, 5000);
        let document_id = r.optional_id("document_id", &q.document_id);
        Some(Step::Result {
            summary: summary?,
            abnormal: q.abnormal,
            document_id,
        })
    })
    .await
}

pub(super) async fn reject(
    api: &RecordsApi,
    request: Request<pb::RejectSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let q = request.get_ref();
    take(api, &request, &q.id, &q.etag, |r| {
        let reason = r.required_line("reason", &q.reason, 500);
        Some(Step::Reject { reason: reason? })
    })
    .await
}

/// Takes a step with the specimen `id` under `etag`, on behalf of the caller
/// of `request`; `read` reads what else the step records.
async fn take<T>(
    api: &RecordsApi,
    request: &Request<T>,
    id: &str,
    etag: &str,
    read: impl FnOnce(&mut Reader) -> Option<Step>,
) -> Result<pb::Specimen, ApiError> {
    let mut r = Reader::new();
    let id = r.id("id", id);
    let revision = r.etag("etag", etag);
    let step = read(&mut r);
    let (id, step) = r.finish((id, step))?;
    let actor = Actor::of(request);
    let record = specimens::transition(&api.db, id, revision, step, &actor).await?;
    Ok(to_proto(&record))
}

pub(super) async fn get(
    api: &RecordsApi,
    request: Request<pb::GetSpecimenRequest>,
) -> Result<pb::Specimen, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
    Ok(to_proto(&specimens::get(&api.db, id, &actor).await?))
}

pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListSpecimensRequest>,
) -> Result<pb::ListSpecimensResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let patient_id = r.id("patient_id", &request.patient_id);
    let state = r.optional_enum::<SpecimenState>("state", request.state);
    let filters = format!("{patient_id:?}/{state:?}");
    let page = r.page(request.page_size, &request.page_token, &filters);
    let (patient_id, page) = r.finish((patient_id, page))?;
    let records = specimens::list_for_patient(&api.db, patient_id, state, &page, &actor).await?;
    let (specimens, next_page_token) = page.tail(records, |r| keys::id(r.specimen.id), to_proto);
    Ok(pb::ListSpecimensResponse {
        specimens,
        next_page_token,
    })
}

pub(super) async fn list_overdue(
    api: &RecordsApi,
    request: Request<pb::ListOverdueSpecimensRequest>,
) -> Result<pb::ListSpecimensResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let as_of = r
        .optional_instant("as_of", request.as_of.as_ref())
        .unwrap_or_else(Utc::now);
    let page = r.page(request.page_size, &request.page_token, &as_of.to_rfc3339());
    let page = r.finish(page)?;
    let records = specimens::list_overdue(&api.db, as_of, &page, &actor).await?;
    let (specimens, next_page_token) = page.tail(records, overdue_key, to_proto);
    Ok(pb::ListSpecimensResponse {
        specimens,
        next_page_token,
    })
}

/// Overdue specimens are listed by dispatch time, then id; every one listed
/// was dispatched.
fn overdue_key(record: &SpecimenRecord) -> String {
    let dispatched: DateTime<Utc> = record.specimen.dispatch_time.unwrap_or_default();
    keys::then_id(&dispatched, record.specimen.id)
}

fn test_type_to_proto(row: &TestTypeRow) -> pb::TestType {
    pb::TestType {
        code: row.code.clone(),
        name: row.name.clone(),
        specimen_type: row.specimen_type.clone(),
        turnaround_hours: row.turnaround_hours,
    }
}

fn to_proto(record: &SpecimenRecord) -> pb::Specimen {
    let s = &record.specimen;
    pb::Specimen {
        id: s.id.to_string(),
        patient_id: s.patient_id.to_string(),
        test_code: s.test_code.clone(),
        state: SpecimenState::stored_to_proto(&s.state),
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
                state: SpecimenState::stored_to_proto(&e.state),
                time: Some(to_timestamp(e.time)),
                actor: e.actor.clone(),
                details: e.details.clone(),
            })
            .collect(),
        etag: s.revision.to_string(),
    }
}
