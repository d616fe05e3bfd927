//! Medical history handlers and the patient summary.

use medsec_platform::idempotency::{self, RequestKey};
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::{to_timestamp, today_in_london};
use medsec_platform::{ApiError, FieldViolations};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::context::{actor, parse_etag, parse_id, parse_uuid};
use super::{RecordsApi, patients};
use crate::domain::history::{HistoryDetails, HistoryKind, overlay, updatable_fields};
use crate::store::history::{self, HistoryRecord};

pub(super) async fn create(
    api: &RecordsApi,
    request: Request<pb::CreateHistoryEntryRequest>,
) -> Result<pb::HistoryEntry, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let Some(entry) = &request.entry else {
        return Err(ApiError::invalid("entry", "is required"));
    };
    let mut violations = FieldViolations::default();
    let patient_id = violations.check("entry.patient_id", parse_uuid(&entry.patient_id));
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    let details = HistoryDetails::parse(
        entry.entry.as_ref(),
        "entry",
        today_in_london(),
        &mut violations,
    );
    violations.into_result()?;
    let (Some(patient_id), Some(details)) = (patient_id, details) else {
        return Err(ApiError::invalid("entry", "is invalid"));
    };
    let key = RequestKey::of(&request.request_id, &request, |r| r.request_id.clear());
    let record = history::create(&api.db, patient_id, details, key, &actor).await?;
    Ok(to_proto(&record))
}

pub(super) async fn update(
    api: &RecordsApi,
    request: Request<pb::UpdateHistoryEntryRequest>,
) -> Result<pb::HistoryEntry, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let Some(entry) = request.entry else {
        return Err(ApiError::invalid("entry", "is required"));
    };
    let paths = request
        .update_mask
        .map(|mask| mask.paths)
        .unwrap_or_default();
    let mut violations = FieldViolations::default();
    let id = violations.check("entry.id", parse_uuid(&entry.id));
    let revision = violations.check("entry.etag", parse_etag(&entry.etag));
    if paths.is_empty() {
        violations.add(
            "update_mask",
            "is required: name the fields to change, or \"*\" for all",
        );
    }
    let Some(new_values) = entry.entry else {
        violations.add(
            "entry",
            "must hold the condition, allergy or medication being changed",
        );
        return Err(ApiError::InvalidArgument(violations));
    };
    violations.into_result()?;
    let (Some(id), Some(revision)) = (id, revision) else {
        return Err(ApiError::invalid("entry.id", "is invalid"));
    };
    let change = |current: &HistoryDetails| {
        let kind = current.kind();
        let mut merged = current.to_proto();
        if std::mem::discriminant(&merged) != std::mem::discriminant(&new_values) {
            return Err(ApiError::invalid(
                "entry",
                format!("this entry is a {kind}; its kind cannot change"),
            ));
        }
        let mut violations = FieldViolations::default();
        for path in &paths {
            let fields: Vec<&str> = if path == "*" {
                updatable_fields(kind).to_vec()
            } else {
                match path
                    .strip_prefix(kind.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                {
                    Some(field) if updatable_fields(kind).contains(&field) => vec![field],
                    _ => {
                        violations.add(
                            "update_mask",
                            format!(
                                "unknown field {path:?} for a {kind}; updatable: {}",
                                updatable_fields(kind)
                                    .iter()
                                    .map(|f| format!("{kind}.{f}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                        continue;
                    }
                }
            };
            for field in fields {
                overlay(&mut merged, &new_values, field);
            }
        }
        violations.into_result()?;
        let mut violations = FieldViolations::default();
        let details =
            HistoryDetails::parse(Some(&merged), "entry", today_in_london(), &mut violations);
        violations.into_result()?;
        details.ok_or_else(|| ApiError::invalid("entry", "is invalid"))
    };
    let record = history::update(&api.db, id, revision, change, &actor).await?;
    Ok(to_proto(&record))
}

pub(super) async fn get(
    api: &RecordsApi,
    request: Request<pb::GetHistoryEntryRequest>,
) -> Result<pb::HistoryEntry, ApiError> {
    let actor = actor(&request);
    let id = parse_id("id", &request.get_ref().id)?;
    Ok(to_proto(&history::get(&api.db, id, &actor).await?))
}

pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListHistoryEntriesRequest>,
) -> Result<pb::ListHistoryEntriesResponse, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    let patient_id = violations.check("patient_id", parse_uuid(&request.patient_id));
    let kind = violations.check(
        "kind",
        match request.kind {
            0 => Ok(None),
            kind => HistoryKind::from_proto(kind).map(Some),
        },
    );
    violations.into_result()?;
    let (Some(patient_id), Some(kind)) = (patient_id, kind) else {
        return Err(ApiError::invalid("patient_id", "is invalid"));
    };
    let fingerprint = format!("{patient_id}/{kind:?}");
    let page = PageRequest::parse(request.page_size, &request.page_token, &fingerprint)?;
    let mut records = history::list(&api.db, patient_id, kind, &page, &actor).await?;
    let next_page_token = page.finish(&mut records, |r| r.row.id.to_string());
    Ok(pb::ListHistoryEntriesResponse {
        entries: records.iter().map(to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn summary(
    api: &RecordsApi,
    request: Request<pb::GetPatientSummaryRequest>,
) -> Result<pb::PatientSummary, ApiError> {
    let actor = actor(&request);
    let patient_id = parse_id("patient_id", &request.get_ref().patient_id)?;
    let (patient, records) = history::summary(&api.db, patient_id, &actor).await?;
    let today = today_in_london();
    let mut summary = pb::PatientSummary {
        patient: Some(patients::to_proto(&patient)),
        ..Default::default()
    };
    for record in records.iter().filter(|r| r.details.is_current(today)) {
        let list = match record.details {
            HistoryDetails::Condition(_) => &mut summary.conditions,
            HistoryDetails::Allergy(_) => &mut summary.allergies,
            HistoryDetails::Medication(_) => &mut summary.medications,
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
