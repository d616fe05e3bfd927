//! Clinical document handlers.

use chrono::{NaiveDate, TimeZone as _, Utc};
use chrono_tz::Europe::London;
use medsec_platform::idempotency::{self, RequestKey};
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::{parse_civil_date, to_timestamp};
use medsec_platform::{ApiError, FieldViolations};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use super::context::{actor, parse_etag, parse_id, parse_uuid};
use crate::domain::documents::{
    DocumentKind, DocumentMeta, DocumentStatus, check_content, parse_content_type,
};
use crate::store::documents::{self, DocumentFilter, VersionChanges};
use medsec_platform::text;

pub(super) async fn create(
    api: &RecordsApi,
    request: Request<pb::CreateDocumentRequest>,
) -> Result<pb::Document, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    violations.check(
        "content",
        check_content(&request.content, api.settings.max_document_bytes),
    );
    let (patient_id, meta) = match &request.document {
        Some(document) => (
            violations.check("document.patient_id", parse_uuid(&document.patient_id)),
            DocumentMeta::parse(document, &mut violations),
        ),
        None => {
            violations.add("document", "is required");
            (None, None)
        }
    };
    violations.into_result()?;
    let (Some(patient_id), Some(meta)) = (patient_id, meta) else {
        return Err(ApiError::invalid("document", "is invalid"));
    };
    let key = RequestKey::of(&request.request_id, &request, |r| r.request_id.clear());
    let row = documents::create(
        &api.db,
        patient_id,
        meta,
        request.content.clone(),
        key,
        &actor,
    )
    .await?;
    Ok(to_proto(&row))
}

pub(super) async fn create_version(
    api: &RecordsApi,
    request: Request<pb::CreateDocumentVersionRequest>,
) -> Result<pb::Document, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    let previous = violations.check("document_id", parse_uuid(&request.document_id));
    let revision = violations.check("etag", parse_etag(&request.etag));
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    violations.check(
        "content",
        check_content(&request.content, api.settings.max_document_bytes),
    );
    let title = match optional(&request.title) {
        Some(title) => violations
            .check("title", text::required_line(title, 200))
            .map(Some),
        None => Some(None),
    };
    let content_type = match optional(&request.content_type) {
        Some(value) => violations
            .check("content_type", parse_content_type(value))
            .map(Some),
        None => Some(None),
    };
    let author = match optional(&request.author) {
        Some(author) => violations
            .check("author", text::required_line(author, 200))
            .map(Some),
        None => Some(None),
    };
    violations.into_result()?;
    let (Some(previous), Some(revision), Some(title), Some(content_type), Some(author)) =
        (previous, revision, title, content_type, author)
    else {
        return Err(ApiError::invalid("document_id", "is invalid"));
    };
    let changes = VersionChanges {
        title,
        content_type,
        author,
    };
    let key = RequestKey::of(&request.request_id, &request, |r| r.request_id.clear());
    let row = documents::create_version(
        &api.db,
        previous,
        revision,
        changes,
        request.content.clone(),
        key,
        &actor,
    )
    .await?;
    Ok(to_proto(&row))
}

pub(super) async fn get(
    api: &RecordsApi,
    request: Request<pb::GetDocumentRequest>,
) -> Result<pb::Document, ApiError> {
    let actor = actor(&request);
    let id = parse_id("id", &request.get_ref().id)?;
    Ok(to_proto(&documents::get(&api.db, id, &actor).await?))
}

pub(super) async fn get_content(
    api: &RecordsApi,
    request: Request<pb::GetDocumentContentRequest>,
) -> Result<pb::DocumentContent, ApiError> {
    let actor = actor(&request);
    let id = parse_id("id", &request.get_ref().id)?;
    let (row, content) = documents::get_content(&api.db, id, &actor).await?;
    Ok(pb::DocumentContent {
        document: Some(to_proto(&row)),
        content,
    })
}

pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListDocumentsRequest>,
) -> Result<pb::ListDocumentsResponse, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    let patient_id = violations.check("patient_id", parse_uuid(&request.patient_id));
    let kind = match request.kind {
        0 => Some(None),
        kind => violations
            .check("kind", DocumentKind::from_proto(kind))
            .map(Some),
    };
    let date =
        |field: &str, text: &str, violations: &mut FieldViolations| -> Option<Option<NaiveDate>> {
            if text.is_empty() {
                return Some(None);
            }
            violations
                .check(
                    field,
                    parse_civil_date(text).ok_or("must be a date in the form YYYY-MM-DD"),
                )
                .map(Some)
        };
    let from = date("filed_from", &request.filed_from, &mut violations);
    let to = date("filed_to", &request.filed_to, &mut violations);
    if let (Some(Some(from)), Some(Some(to))) = (from, to)
        && to < from
    {
        violations.add("filed_to", "must not be before filed_from");
    }
    violations.into_result()?;
    let (Some(patient_id), Some(kind), Some(from), Some(to)) = (patient_id, kind, from, to) else {
        return Err(ApiError::invalid("patient_id", "is invalid"));
    };
    let filter = DocumentFilter {
        patient_id,
        kind,
        // Civil dates are London days: from its first instant to the next day's.
        filed_from: from.and_then(start_of_london_day),
        filed_before: to
            .and_then(|to| to.succ_opt())
            .and_then(start_of_london_day),
        include_superseded: request.include_superseded,
    };
    let fingerprint = format!("{filter:?}");
    let page = PageRequest::parse(request.page_size, &request.page_token, &fingerprint)?;
    let mut rows = documents::list(&api.db, &filter, &page, &actor).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListDocumentsResponse {
        documents: rows.iter().map(to_proto).collect(),
        next_page_token,
    })
}

fn start_of_london_day(date: NaiveDate) -> Option<chrono::DateTime<Utc>> {
    // Midnight exists on every London day (clocks change at 01:00 and 02:00).
    London
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|instant| instant.with_timezone(&Utc))
}

fn to_proto(row: &crate::store::entities::document::Model) -> pb::Document {
    pb::Document {
        id: row.id.to_string(),
        patient_id: row.patient_id.to_string(),
        title: row.title.clone(),
        kind: DocumentKind::stored_to_proto(&row.kind),
        content_type: row.content_type.clone(),
        author: row.author.clone(),
        size_bytes: row.size_bytes,
        sha256: row.sha256.clone(),
        version: row.version,
        status: DocumentStatus::stored_to_proto(&row.status),
        lineage_id: row.lineage_id.to_string(),
        supersedes_id: row
            .supersedes_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
        etag: row.revision.to_string(),
    }
}

fn optional(value: &str) -> Option<&str> {
    (!value.trim().is_empty()).then_some(value)
}
