//! Clinical document handlers.

use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::request::read_id;
use medsec_platform::time::to_timestamp;
use medsec_platform::{ApiError, Reader};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use crate::domain::documents::{
    DocumentKind, DocumentMeta, DocumentStatus, FiledRange, VersionChanges, check_content,
};
use crate::store::documents::{self, DocumentFilter};
use crate::store::entities::document::Model as DocumentRow;

pub(super) async fn create(
    api: &RecordsApi,
    request: Request<pb::CreateDocumentRequest>,
) -> Result<pb::Document, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let max_bytes = api.settings.max_document_bytes;
    r.check("content", check_content(&request.content, max_bytes));
    let document = r.message("document", request.document.as_ref())?;
    let patient_id = r.id("document.patient_id", &document.patient_id);
    let meta = DocumentMeta::read(&mut r, document);
    let (patient_id, meta) = r.finish((patient_id, meta))?;
    let content = request.content.clone();
    let row = documents::create(&api.db, patient_id, meta, content, key.as_ref(), &actor).await?;
    Ok(to_proto(&row))
}

pub(super) async fn create_version(
    api: &RecordsApi,
    request: Request<pb::CreateDocumentVersionRequest>,
) -> Result<pb::Document, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let previous = r.id("document_id", &request.document_id);
    let revision = r.etag("etag", &request.etag);
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let max_bytes = api.settings.max_document_bytes;
    r.check("content", check_content(&request.content, max_bytes));
    let changes = VersionChanges::read(
        &mut r,
        &request.title,
        &request.content_type,
        &request.author,
    );
    let previous = r.finish(previous)?;
    let content = request.content.clone();
    let row = documents::create_version(
        &api.db,
        previous,
        revision,
        changes,
        content,
        key.as_ref(),
        &actor,
    )
    .await?;
    Ok(to_proto(&row))
}

pub(super) async fn get(
    api: &RecordsApi,
    request: Request<pb::GetDocumentRequest>,
) -> Result<pb::Document, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
    Ok(to_proto(&documents::get(&api.db, id, &actor).await?))
}

pub(super) async fn get_content(
    api: &RecordsApi,
    request: Request<pb::GetDocumentContentRequest>,
) -> Result<pb::DocumentContent, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
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
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let patient_id = r.id("patient_id", &request.patient_id);
    let kind = r.optional_enum::<DocumentKind>("kind", request.kind);
    let from = r.optional_date("filed_from", &request.filed_from);
    let to = r.optional_date("filed_to", &request.filed_to);
    let filed = r.check("filed_to", FiledRange::of_days(from, to));
    let filters = format!(
        "{patient_id:?}/{kind:?}/{filed:?}/{}",
        request.include_superseded
    );
    let page = r.page(request.page_size, &request.page_token, &filters);
    let (patient_id, filed, page) = r.finish((patient_id, filed, page))?;
    let filter = DocumentFilter {
        patient_id,
        kind,
        filed,
        include_superseded: request.include_superseded,
    };
    let rows = documents::list(&api.db, &filter, &page, &actor).await?;
    let (documents, next_page_token) = page.tail(rows, |row| keys::id(row.id), to_proto);
    Ok(pb::ListDocumentsResponse {
        documents,
        next_page_token,
    })
}

fn to_proto(row: &DocumentRow) -> pb::Document {
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
