//! Medical history handlers and the patient summary.

use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::request::read_id;
use medsec_platform::time::{to_timestamp, today_in_london};
use medsec_platform::{ApiError, Reader};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::{RecordsApi, patients};
use crate::domain::history::{HistoryDetails, HistoryKind};
use crate::store::history::{self, HistoryRecord};

pub(super) async fn create(
    api: &RecordsApi,
    request: Request<pb::CreateHistoryEntryRequest>,
) -> Result<pb::HistoryEntry, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let entry = r.message("entry", request.entry.as_ref())?;
    let patient_id = r.id("entry.patient_id", &entry.patient_id);
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let details = HistoryDetails::read(&mut r, entry.entry.as_ref(), "entry", today_in_london());
    let (patient_id, details) = r.finish((patient_id, details))?;
    let record = history::create(&api.db, patient_id, details, key.as_ref(), &actor).await?;
    Ok(to_proto(&record))
}

pub(super) async fn update(
    api: &RecordsApi,
    request: Request<pb::UpdateHistoryEntryRequest>,
) -> Result<pb::HistoryEntry, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let entry = r.message("entry", request.entry.as_ref())?;
    let id = r.id("entry.id", &entry.id);
    let revision = r.etag("entry.etag", &entry.etag);
    let paths = r.mask_paths(request.update_mask.as_ref());
    if paths.is_some_and(<[String]>::is_empty) {
        r.add(
            "update_mask",
            "is required: name the fields to change, or \"*\" for all",
        );
    }
    let new_values = entry.entry.as_ref();
    if new_values.is_none() {
        r.add(
            "entry",
            "must hold the condition, allergy or medication being changed",
        );
    }
    let (id, new_values, paths) = r.finish((id, new_values, paths))?;
    let change = |current: &HistoryDetails| {
        let mut r = Reader::new();
        let patched = current.patched(&mut r, new_values, paths, today_in_london());
        r.finish(patched)
    };
    let record = history::update(&api.db, id, revision, change, &actor).await?;
    Ok(to_proto(&record))
}

pub(super) async fn get(
    api: &RecordsApi,
    request: Request<pb::GetHistoryEntryRequest>,
) -> Result<pb::HistoryEntry, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
    Ok(to_proto(&history::get(&api.db, id, &actor).await?))
}

pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListHistoryEntriesRequest>,
) -> Result<pb::ListHistoryEntriesResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let patient_id = r.id("patient_id", &request.patient_id);
    let kind = r.optional_enum::<HistoryKind>("kind", request.kind);
    let filters = format!("{patient_id:?}/{kind:?}");
    let page = r.page(request.page_size, &request.page_token, &filters);
    let (patient_id, page) = r.finish((patient_id, page))?;
    let records = history::list(&api.db, patient_id, kind, &page, &actor).await?;
    let (entries, next_page_token) = page.tail(records, |r| keys::id(r.row.id), to_proto);
    Ok(pb::ListHistoryEntriesResponse {
        entries,
        next_page_token,
    })
}

pub(super) async fn summary(
    api: &RecordsApi,
    request: Request<pb::GetPatientSummaryRequest>,
) -> Result<pb::PatientSummary, ApiError> {
    let actor = Actor::of(&request);
    let patient_id = read_id("patient_id", &request.get_ref().patient_id)?;
    let (patient, records) = history::summary(&api.db, patient_id, &actor).await?;
    let today = today_in_london();
    let mut summary = pb::PatientSummary {
        patient: Some(patients::to_proto(&patient)),
        ..Default::default()
    };
    for record in records.iter().filter(|r| r.details.is_current(today)) {
        let list = match record.details.kind() {
            HistoryKind::Condition => &mut summary.conditions,
            HistoryKind::Allergy => &mut summary.allergies,
            HistoryKind::Medication => &mut summary.medications,
        };
        list.push(to_proto(record));
    }
    Ok(summary)
}

fn to_proto(record: &HistoryRecord) -> pb::HistoryEntry {
    pb::HistoryEntry {
        id: record.row.id.to_string(),
        patient_id: record.row.patient_id.to_string(),
        entry: Some(record.details.to_proto()),
        create_time: Some(to_timestamp(record.row.create_time)),
        update_time: Some(to_timestamp(record.row.update_time)),
        etag: record.row.revision.to_string(),
    }
}
