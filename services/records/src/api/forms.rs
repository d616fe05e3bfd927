//! Intake form handlers: templates and the responses to them.

use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::time::to_timestamp;
use medsec_platform::{ApiError, Reader};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use super::read;
use crate::domain::forms::{
    FormStatus, MAX_ITEMS, TemplateContent, check_answers, items_to_proto, next_revision,
};
use crate::store::forms::{self, NewResponse, ResponseRecord, TemplateRecord};

pub(super) async fn create_template(
    api: &RecordsApi,
    request: Request<pb::CreateFormTemplateRequest>,
) -> Result<pb::FormTemplate, ApiError> {
    let request = request.get_ref();
    let mut r = Reader::new();
    let template = r.message("template", request.template.as_ref())?;
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let content = TemplateContent::read(&mut r, &template.title, &template.items, "template");
    let content = r.finish(content)?;
    let record = forms::create_template(&api.db, content, key.as_ref()).await?;
    Ok(template_to_proto(&record))
}

pub(super) async fn create_template_version(
    api: &RecordsApi,
    request: Request<pb::CreateFormTemplateVersionRequest>,
) -> Result<pb::FormTemplate, ApiError> {
    let request = request.get_ref();
    let mut r = Reader::new();
    let id = r.id("template_id", &request.template_id);
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let content = TemplateContent::read(&mut r, &request.title, &request.items, "");
    let (id, content) = r.finish((id, content))?;
    let record = forms::create_template_version(&api.db, id, content, key.as_ref()).await?;
    Ok(template_to_proto(&record))
}

pub(super) async fn get_template(
    api: &RecordsApi,
    request: Request<pb::GetFormTemplateRequest>,
) -> Result<pb::FormTemplate, ApiError> {
    let request = request.get_ref();
    let mut r = Reader::new();
    let id = r.id("template_id", &request.template_id);
    let version = read::version(&mut r, "version", request.version);
    let (id, version) = r.finish((id, version))?;
    let record = forms::find_template(&api.db, id, version).await?;
    Ok(template_to_proto(&record))
}

pub(super) async fn list_templates(
    api: &RecordsApi,
    request: Request<pb::ListFormTemplatesRequest>,
) -> Result<pb::ListFormTemplatesResponse, ApiError> {
    let request = request.get_ref();
    let page = Reader::new().finish_page("", &(), request.page_size, &request.page_token)?;
    let records = forms::list_templates(&api.db, &page).await?;
    let (templates, next_page_token) =
        page.tail(records, |r| keys::id(r.row.id), template_to_proto);
    Ok(pb::ListFormTemplatesResponse {
        templates,
        next_page_token,
    })
}

pub(super) async fn submit(
    api: &RecordsApi,
    request: Request<pb::SubmitFormResponseRequest>,
) -> Result<pb::FormResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let response = r.message("response", request.response.as_ref())?;
    let key = r.request_key(&request.request_id, request, |q| q.request_id.clear());
    let patient_id = r.id("response.patient_id", &response.patient_id);
    let template_id = r.id("response.template_id", &response.template_id);
    let template_version = match response.template_version {
        version if version >= 1 => Some(version),
        _ => {
            r.add(
                "response.template_version",
                "must name a version (1 or more)",
            );
            None
        }
    };
    let status = r.check("response.status", FormStatus::submitted(response.status));
    // Refused before the template is read, not only by `check_answers`.
    r.at_most("response.answers", &response.answers, MAX_ITEMS);
    let (patient_id, template_id, template_version, status) =
        r.finish((patient_id, template_id, template_version, status))?;
    // The template is immutable, so checking outside the writing transaction
    // is safe.
    let template = forms::find_template(&api.db, template_id, Some(template_version)).await?;
    let answers = check_answers(
        &template.items,
        &response.answers,
        status.is_complete(),
        "response.answers",
    )
    .map_err(ApiError::InvalidArgument)?;
    let new = NewResponse {
        patient_id,
        template_id,
        template_version,
        status,
        answers,
    };
    let record = forms::submit(&api.db, new, key.as_ref(), &actor).await?;
    Ok(response_to_proto(&record))
}

pub(super) async fn revise(
    api: &RecordsApi,
    request: Request<pb::ReviseFormResponseRequest>,
) -> Result<pb::FormResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let revision = r.etag("etag", &request.etag);
    // Refused before the response is read, not only by `next_revision`.
    r.at_most("answers", &request.answers, MAX_ITEMS);
    let id = r.finish(id)?;
    let check = |status: FormStatus, template: &TemplateRecord| {
        next_revision(status, &template.items, &request.answers, request.complete)
            .map_err(ApiError::InvalidArgument)
    };
    let record = forms::revise(&api.db, id, revision, check, &actor).await?;
    Ok(response_to_proto(&record))
}

pub(super) async fn get_response(
    api: &RecordsApi,
    request: Request<pb::GetFormResponseRequest>,
) -> Result<pb::FormResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let revision = read::version(&mut r, "revision", request.revision);
    let (id, revision) = r.finish((id, revision))?;
    let record = forms::get(&api.db, id, revision, &actor).await?;
    Ok(response_to_proto(&record))
}

pub(super) async fn list_responses(
    api: &RecordsApi,
    request: Request<pb::ListFormResponsesRequest>,
) -> Result<pb::ListFormResponsesResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let (patient_id, page) =
        read::patient_page(&request.patient_id, request.page_size, &request.page_token)?;
    let records = forms::list(&api.db, patient_id, &page, &actor).await?;
    let (responses, next_page_token) =
        page.tail(records, |r| keys::id(r.response.id), response_to_proto);
    Ok(pb::ListFormResponsesResponse {
        responses,
        next_page_token,
    })
}

fn template_to_proto(record: &TemplateRecord) -> pb::FormTemplate {
    pb::FormTemplate {
        id: record.row.id.to_string(),
        version: record.row.version,
        title: record.row.title.clone(),
        items: items_to_proto(&record.items),
        create_time: Some(to_timestamp(record.row.create_time)),
    }
}

fn response_to_proto(record: &ResponseRecord) -> pb::FormResponse {
    pb::FormResponse {
        id: record.response.id.to_string(),
        patient_id: record.response.patient_id.to_string(),
        template_id: record.response.template_id.to_string(),
        template_version: record.response.template_version,
        status: FormStatus::stored_to_proto(&record.revision.status),
        answers: record.answers.iter().map(|a| a.to_proto()).collect(),
        revision: record.revision.revision,
        author: record.revision.author.clone(),
        create_time: Some(to_timestamp(record.response.create_time)),
        update_time: Some(to_timestamp(record.revision.time)),
        etag: record.response.revision.to_string(),
    }
}
