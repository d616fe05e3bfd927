//! Form templates (immutable versions) and responses with every revision
//! kept.

use std::collections::HashMap;

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::db;
use medsec_platform::idempotency::{Claim, Claimed, RequestKey};
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use super::IDEMPOTENCY_KEYS;
use super::entities::{
    form_response as response, form_response_revision as revision, form_template as template,
};
use super::patients;
use crate::domain::forms::{AnswerValue, FormItem, FormStatus, TemplateContent};
use medsec_platform::audit::{self, Access, Actor, Audited};

/// A template version with its items decoded.
#[derive(Debug, Clone)]
pub struct TemplateRecord {
    pub row: template::Model,
    pub items: Vec<FormItem>,
}

/// A response at one revision.
#[derive(Debug, Clone)]
pub struct ResponseRecord {
    pub response: response::Model,
    pub revision: revision::Model,
    pub answers: Vec<AnswerValue>,
}

impl Audited for ResponseRecord {
    fn access(&self) -> Access {
        Access::patient(resource(self.response.id), self.response.patient_id)
    }
}

/// A response as submitted: already checked against its template version.
#[derive(Debug, Clone)]
pub struct NewResponse {
    pub patient_id: Uuid,
    pub template_id: Uuid,
    pub template_version: i32,
    pub status: FormStatus,
    pub answers: Vec<AnswerValue>,
}

pub fn resource(id: Uuid) -> String {
    format!("form-responses/{id}")
}

fn decode_template(row: template::Model) -> Result<TemplateRecord, ApiError> {
    let items = serde_json::from_str(&row.items).map_err(ApiError::internal)?;
    Ok(TemplateRecord { row, items })
}

/// A template at `version`, or its latest version when `None`.
pub async fn find_template(
    db: &impl ConnectionTrait,
    id: Uuid,
    version: Option<i32>,
) -> Result<TemplateRecord, ApiError> {
    let query = template::Entity::find().filter(template::Column::Id.eq(id));
    let query = match version {
        Some(version) => query.filter(template::Column::Version.eq(version)),
        None => query.filter(template::Column::Latest.eq(true)),
    };
    let row = query.one(db).await?.ok_or_else(|| {
        let name = match version {
            Some(version) => format!("{id} version {version}"),
            None => id.to_string(),
        };
        ApiError::not_found("form_template", name)
    })?;
    decode_template(row)
}

pub async fn create_template(
    db: &DatabaseConnection,
    content: TemplateContent,
    key: Option<&RequestKey>,
) -> Result<TemplateRecord, ApiError> {
    IDEMPOTENCY_KEYS
        .create(
            db,
            "CreateFormTemplate",
            key,
            async |txn, claimed| match claimed {
                Claimed::Replay(id) => find_template(txn, id, Some(1)).await,
                Claimed::New(id) => insert_template(txn, id, 1, content).await,
            },
        )
        .await
}

/// Adds the next version; the previous latest stops being latest in the
/// same transaction, so two racing new versions cannot both succeed. A retry
/// with the same key returns the version the first call added: the key is
/// claimed for "template/version", as a version has no id of its own.
pub async fn create_template_version(
    db: &DatabaseConnection,
    id: Uuid,
    content: TemplateContent,
    key: Option<&RequestKey>,
) -> Result<TemplateRecord, ApiError> {
    db::write(db, async |txn| {
        let latest = find_template(txn, id, None).await?;
        let version = latest.row.version + 1;
        if let Some(key) = key {
            let scope = "CreateFormTemplateVersion";
            let resource = format!("{id}/{version}");
            let claim = IDEMPOTENCY_KEYS
                .claim(txn, scope, &key.request_id, &key.request, &resource)
                .await?;
            if let Claim::Replay { resource_id } = claim {
                let version = resource_id
                    .rsplit_once('/')
                    .and_then(|(_, version)| version.parse().ok())
                    .ok_or_else(|| ApiError::internal("bad template version key"))?;
                return find_template(txn, id, Some(version)).await;
            }
        }
        let demoted = template::Entity::update_many()
            .col_expr(template::Column::Latest, Expr::value(false))
            .filter(template::Column::Id.eq(id))
            .filter(template::Column::Version.eq(latest.row.version))
            .filter(template::Column::Latest.eq(true))
            .exec(txn)
            .await?;
        if demoted.rows_affected == 0 {
            return Err(ApiError::Aborted(format!(
                "form template {id} gained a version concurrently; retry"
            )));
        }
        insert_template(txn, id, version, content).await
    })
    .await
}

async fn insert_template(
    db: &impl ConnectionTrait,
    id: Uuid,
    version: i32,
    content: TemplateContent,
) -> Result<TemplateRecord, ApiError> {
    let row = template::ActiveModel {
        id: Set(id),
        version: Set(version),
        title: Set(content.title),
        items: Set(serde_json::to_string(&content.items).map_err(ApiError::internal)?),
        latest: Set(true),
        create_time: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(TemplateRecord {
        row,
        items: content.items,
    })
}

/// The latest version of each template, in creation order.
pub async fn list_templates(
    db: &impl ConnectionTrait,
    page: &PageRequest,
) -> Result<Vec<TemplateRecord>, ApiError> {
    let query = template::Entity::find().filter(template::Column::Latest.eq(true));
    page.by_id(query, template::Column::Id)?
        .all(db)
        .await?
        .into_iter()
        .map(decode_template)
        .collect()
}

pub async fn submit(
    db: &DatabaseConnection,
    new: NewResponse,
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<ResponseRecord, ApiError> {
    audit::create(
        db,
        &IDEMPOTENCY_KEYS,
        "SubmitFormResponse",
        actor,
        key,
        async |txn, id| load(txn, id, None).await,
        async |txn, id| {
            patients::require_active(txn, new.patient_id).await?;
            let now = Utc::now();
            response::ActiveModel {
                id: Set(id),
                patient_id: Set(new.patient_id),
                template_id: Set(new.template_id),
                template_version: Set(new.template_version),
                status: Set(new.status.as_str().to_owned()),
                revision: Set(1),
                create_time: Set(now),
                update_time: Set(now),
            }
            .insert(txn)
            .await?;
            insert_revision(txn, id, 1, new.status, &new.answers, actor).await?;
            load(txn, id, None).await
        },
    )
    .await
}

/// Saves the next revision. `check` sees the stored response's status and
/// its template, and returns the new status and answers (or what is wrong).
pub async fn revise(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    check: impl FnOnce(FormStatus, &TemplateRecord) -> Result<(FormStatus, Vec<AnswerValue>), ApiError>,
    actor: &Actor,
) -> Result<ResponseRecord, ApiError> {
    audit::audited_one(db, actor, async |txn| {
        let current = find_response(txn, id).await?;
        if expected_revision.is_some_and(|revision| revision != i64::from(current.revision)) {
            return Err(ApiError::stale_etag(resource(id)));
        }
        patients::require_active(txn, current.patient_id).await?;
        let template =
            find_template(txn, current.template_id, Some(current.template_version)).await?;
        let stored = FormStatus::from_stored(&current.status)
            .ok_or_else(|| ApiError::internal(format!("form response {id} has a bad status")))?;
        let (status, answers) = check(stored, &template)?;
        let next = current.revision + 1;
        let bumped = response::Entity::update_many()
            .col_expr(response::Column::Revision, Expr::value(next))
            .col_expr(response::Column::Status, Expr::value(status.as_str()))
            .col_expr(response::Column::UpdateTime, Expr::value(Utc::now()))
            .filter(response::Column::Id.eq(id))
            .filter(response::Column::Revision.eq(current.revision))
            .exec(txn)
            .await?;
        if bumped.rows_affected == 0 {
            return Err(ApiError::stale_etag(resource(id)));
        }
        insert_revision(txn, id, next, status, &answers, actor).await?;
        load(txn, id, None).await
    })
    .await
}

async fn insert_revision(
    db: &impl ConnectionTrait,
    response_id: Uuid,
    revision: i32,
    status: FormStatus,
    answers: &[AnswerValue],
    actor: &Actor,
) -> Result<(), ApiError> {
    revision::ActiveModel {
        response_id: Set(response_id),
        revision: Set(revision),
        status: Set(status.as_str().to_owned()),
        answers: Set(serde_json::to_string(answers).map_err(ApiError::internal)?),
        author: Set(actor.subject.clone()),
        time: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

async fn find_response(db: &impl ConnectionTrait, id: Uuid) -> Result<response::Model, ApiError> {
    response::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("form_response", id.to_string()))
}

/// A response at `revision`, or its latest.
async fn load(
    db: &impl ConnectionTrait,
    id: Uuid,
    revision: Option<i32>,
) -> Result<ResponseRecord, ApiError> {
    let response = find_response(db, id).await?;
    let wanted = revision.unwrap_or(response.revision);
    let revision = revision::Entity::find_by_id((id, wanted))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("form_response", format!("{id} revision {wanted}")))?;
    record(response, revision)
}

/// A response with the revision read, its answers decoded.
fn record(
    response: response::Model,
    revision: revision::Model,
) -> Result<ResponseRecord, ApiError> {
    let answers = serde_json::from_str(&revision.answers).map_err(ApiError::internal)?;
    Ok(ResponseRecord {
        response,
        revision,
        answers,
    })
}

pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
    revision: Option<i32>,
    actor: &Actor,
) -> Result<ResponseRecord, ApiError> {
    audit::read_one(db, actor, async |txn| load(txn, id, revision).await).await
}

/// One page of a patient's responses at their latest revisions; audited once.
pub async fn list(
    db: &DatabaseConnection,
    patient_id: Uuid,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<ResponseRecord>, ApiError> {
    audit::read(db, actor, async |txn| {
        patients::find(txn, patient_id).await?;
        let query = response::Entity::find().filter(response::Column::PatientId.eq(patient_id));
        let rows = page.by_id(query, response::Column::Id)?.all(txn).await?;
        // Every row's latest revision in one query.
        let latest = rows.iter().fold(Condition::any(), |any, row| {
            any.add(
                Condition::all()
                    .add(revision::Column::ResponseId.eq(row.id))
                    .add(revision::Column::Revision.eq(row.revision)),
            )
        });
        let mut revisions: HashMap<Uuid, revision::Model> = if rows.is_empty() {
            HashMap::new()
        } else {
            revision::Entity::find()
                .filter(latest)
                .all(txn)
                .await?
                .into_iter()
                .map(|revision| (revision.response_id, revision))
                .collect()
        };
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let revision = revisions.remove(&row.id).ok_or_else(|| {
                ApiError::internal(format!("form response {} has no latest revision", row.id))
            })?;
            records.push(record(row, revision)?);
        }
        let listing = format!("{}/form-responses", patients::resource(patient_id));
        Ok((records, [Access::patient(listing, patient_id)]))
    })
    .await
}
