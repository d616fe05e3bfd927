//! Intake form handlers.

use medsec_platform::idempotency::{self, RequestKey};
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::to_timestamp;
use medsec_platform::{ApiError, FieldViolations};
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use super::context::{actor, parse_id, parse_uuid};
use crate::domain::forms::{FormStatus, TemplateContent, check_answers, items_to_proto};
use crate::store::forms::{self, NewResponse, ResponseRecord, TemplateRecord};

pub(super) async fn create_template(
    api: &RecordsApi,
    request: Request<pb::CreateFormTemplateRequest>,
) -> Result<pb::FormTemplate, ApiError> {
    let request = request.into_inner();
    let Some(template) = &request.template else {
        return Err(ApiError::invalid("template", "is required"));
    };
    let mut violations = FieldViolations::default();
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    let content = match TemplateContent::parse(&template.title, &template.items, "template") {
        Ok(content) => Some(content),
        Err(bad) => {
            violations.extend(bad);
            None
        }
    };
    violations.into_result()?;
    let content = content.ok_or_else(|| ApiError::invalid("template", "is invalid"))?;
    let key = RequestKey::of(&request.request_id, &request, |r| r.request_id.clear());
    Ok(template_to_proto(
        &forms::create_template(&api.db, content, key).await?,
    ))
}

pub(super) async fn create_template_version(
    api: &RecordsApi,
    request: Request<pb::CreateFormTemplateVersionRequest>,
) -> Result<pb::FormTemplate, ApiError> {
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    let id = violations.check("template_id", parse_uuid(&request.template_id));
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    let content = match TemplateContent::parse(&request.title, &request.items, "") {
        Ok(content) => Some(content),
        Err(bad) => {
            violations.extend(bad);
            None
        }
    };
    violations.into_result()?;
    let (Some(id), Some(content)) = (id, content) else {
        return Err(ApiError::invalid("template_id", "is invalid"));
    };
    let key = RequestKey::of(&request.request_id, &request, |r| r.request_id.clear());
    Ok(template_to_proto(
        &forms::create_template_version(&api.db, id, content, key).await?,
    ))
}

pub(super) async fn get_template(
    api: &RecordsApi,
    request: Request<pb::GetFormTemplateRequest>,
) -> Result<pb::FormTemplate, ApiError> {
    let request = request.into_inner();
    let id = parse_id("template_id", &request.template_id)?;
    let version = match request.version {
        0 => None,
        v if v > 0 => Some(v),
        _ => return Err(ApiError::invalid("version", "must not be negative")),
    };
    Ok(template_to_proto(
        &forms::find_template(&api.db, id, version).await?,
    ))
}

pub(super) async fn list_templates(
    api: &RecordsApi,
    request: Request<pb::ListFormTemplatesRequest>,
) -> Result<pb::ListFormTemplatesResponse, ApiError> {
    let request = request.into_inner();
    let page = PageRequest::parse(request.page_size, &request.page_token, "")?;
    let mut records = forms::list_templates(&api.db, &page).await?;
    let next_page_token = page.finish(&mut records, |r| r.row.id.to_string());
    Ok(pb::ListFormTemplatesResponse {
        templates: records.iter().map(template_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn submit(
    api: &RecordsApi,
    request: Request<pb::SubmitFormResponseRequest>,
) -> Result<pb::FormResponse, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let Some(response) = &request.response else {
        return Err(ApiError::invalid("response", "is required"));
    };
    let mut violations = FieldViolations::default();
    violations.check(
        "request_id",
        idempotency::validate_request_id(&request.request_id),
    );
    let patient_id = violations.check("response.patient_id", parse_uuid(&response.patient_id));
    let template_id = violations.check("response.template_id", parse_uuid(&response.template_id));
    if response.template_version < 1 {
        violations.add(
            "response.template_version",
            "must name a version (1 or more)",
        );
    }
    let status = match pb::FormResponseStatus::try_from(response.status) {
        Ok(pb::FormResponseStatus::InProgress) => Some(FormStatus::InProgress),
        Ok(pb::FormResponseStatus::Completed) => Some(FormStatus::Completed),
        _ => {
            violations.add(
                "response.status",
                "must be FORM_RESPONSE_STATUS_IN_PROGRESS or FORM_RESPONSE_STATUS_COMPLETED",
            );
            None
        }
    };
    violations.into_result()?;
    let (Some(patient_id), Some(template_id), Some(status)) = (patient_id, template_id, status)
    else {
        return Err(ApiError::invalid("response", "is invalid"));
    };
    // The template is immutable, so checking outside the writing transaction
    // is safe.
    let template =
        forms::find_template(&api.db, template_id, Some(response.template_version)).await?;
    let answers = check_answers(
        &template.items,
        &response.answers,
        status == FormStatus::Completed,
        "response.answers",
    )
    .map_err(ApiError::InvalidArgument)?;
    let key = RequestKey::of(&request.request_id, &request, |r| r.request_id.clear());
    let new = NewResponse {
        patient_id,
        template_id,
        template_version: response.template_version,
        status,
        answers,
    };
    Ok(response_to_proto(
        &forms::submit(&api.db, new, key, &actor).await?,
    ))
}

pub(super) async fn revise(
    api: &RecordsApi,
    request: Request<pb::ReviseFormResponseRequest>,
) -> Result<pb::FormResponse, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let mut violations = FieldViolations::default();
    let id = violations.check("id", parse_uuid(&request.id));
    let revision = violations.check(
        "etag",
        match request.etag.as_str() {
            "" => Ok(None),
            etag => etag
                .parse::<i32>()
                .map(Some)
                .map_err(|_| "is not an etag this API issued"),
        },
    );
    violations.into_result()?;
    let (Some(id), Some(revision)) = (id, revision) else {
        return Err(ApiError::invalid("id", "is invalid"));
    };
    let check = |current: &crate::store::entities::form_response::Model,
                 template: &TemplateRecord| {
        // Once completed, every revision is an amendment and stays complete.
        let was_complete = current.status != FormStatus::InProgress.as_str();
        let status = match (was_complete, request.complete) {
            (true, _) => FormStatus::Amended,
            (false, true) => FormStatus::Completed,
            (false, false) => FormStatus::InProgress,
        };
        let answers = check_answers(
            &template.items,
            &request.answers,
            status != FormStatus::InProgress,
            "answers",
        )
        .map_err(ApiError::InvalidArgument)?;
        Ok((status, answers))
    };
    Ok(response_to_proto(
        &forms::revise(&api.db, id, revision, check, &actor).await?,
    ))
}

pub(super) async fn get_response(
    api: &RecordsApi,
    request: Request<pb::GetFormResponseRequest>,
) -> Result<pb::FormResponse, ApiError> {
    let actor = actor(&request);
    let request = request.get_ref();
    let id = parse_id("id", &request.id)?;
    let revision = match request.revision {
        0 => None,
        r if r > 0 => Some(r),
        _ => return Err(ApiError::invalid("revision", "must not be negative")),
    };
    Ok(response_to_proto(
        &forms::get(&api.db, id, revision, &actor).await?,
    ))
}

pub(super) async fn list_responses(
    api: &RecordsApi,
    request: Request<pb::ListFormResponsesRequest>,
) -> Result<pb::ListFormResponsesResponse, ApiError> {
    let actor = actor(&request);
    let request = request.into_inner();
    let patient_id = parse_id("patient_id", &request.patient_id)?;
    let page = PageRequest::parse(request.page_size, &request.page_token, &request.patient_id)?;
    let mut records = forms::list(&api.db, patient_id, &page, &actor).await?;
    let next_page_token = page.finish(&mut records, |r| r.response.id.to_string());
    Ok(pb::ListFormResponsesResponse {
        responses: records.iter().map(response_to_proto).collect(),
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
