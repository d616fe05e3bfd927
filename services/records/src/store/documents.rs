//! Clinical documents and their versions. Content lives in its own table so
//! listings never load it.

use chrono::{DateTime, Utc};
use medsec_platform::ApiError;
use medsec_platform::db::begin_write;
use medsec_platform::idempotency::RequestKey;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter,
};
use uuid::Uuid;

use super::IDEMPOTENCY_KEYS;
use super::audit::{self, Access, Actor};
use super::patients;
use crate::domain::documents::{DocumentKind, DocumentMeta, DocumentStatus, sha256_hex};

use super::entities::document;

use super::entities::document_content as content;

use document::{Column, Entity as Documents, Model};

const RESOURCE: &str = "document";

pub fn resource(id: Uuid) -> String {
    format!("documents/{id}")
}

/// Filters of ListDocuments, validated.
#[derive(Debug, Clone)]
pub struct DocumentFilter {
    pub patient_id: Uuid,
    pub kind: Option<DocumentKind>,
    pub filed_from: Option<DateTime<Utc>>,
    pub filed_before: Option<DateTime<Utc>>,
    pub include_superseded: bool,
}

/// Changes a new version may make; `None` keeps the previous value.
#[derive(Debug, Clone, Default)]
pub struct VersionChanges {
    pub title: Option<String>,
    pub content_type: Option<String>,
    pub author: Option<String>,
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    Documents::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, id.to_string()))
}

/// Files version 1 of a document.
pub async fn create(
    db: &DatabaseConnection,
    patient_id: Uuid,
    meta: DocumentMeta,
    content: Vec<u8>,
    key: Option<RequestKey>,
    actor: &Actor,
) -> Result<Model, ApiError> {
    let creation = IDEMPOTENCY_KEYS
        .begin_create(db, "CreateDocument", key.as_ref())
        .await?;
    let (txn, id) = (creation.txn, creation.id);
    if let Some(existing) = creation.replay_of {
        return replay(txn, existing, "CreateDocument", actor).await;
    }
    patients::require_active(&txn, patient_id).await?;
    let row = insert(&txn, id, id, patient_id, 1, None, &meta, content).await?;
    audit::record(
        &txn,
        actor,
        [Access::new("CreateDocument", resource(id), patient_id)],
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// Files a new version of the current document `previous_id`, which becomes
/// superseded in the same transaction.
pub async fn create_version(
    db: &DatabaseConnection,
    previous_id: Uuid,
    expected_revision: Option<i64>,
    changes: VersionChanges,
    content: Vec<u8>,
    key: Option<RequestKey>,
    actor: &Actor,
) -> Result<Model, ApiError> {
    let creation = IDEMPOTENCY_KEYS
        .begin_create(db, "CreateDocumentVersion", key.as_ref())
        .await?;
    let (txn, id) = (creation.txn, creation.id);
    if let Some(existing) = creation.replay_of {
        return replay(txn, existing, "CreateDocumentVersion", actor).await;
    }
    // Supersede first: of two racing new versions only one finds it current.
    let mut supersede = Documents::update_many()
        .col_expr(
            Column::Status,
            Expr::value(DocumentStatus::Superseded.as_str()),
        )
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .filter(Column::Id.eq(previous_id))
        .filter(Column::Status.eq(DocumentStatus::Current.as_str()));
    if let Some(revision) = expected_revision {
        supersede = supersede.filter(Column::Revision.eq(revision));
    }
    if supersede.exec(&txn).await?.rows_affected == 0 {
        let previous = find(&txn, previous_id).await?;
        return Err(if previous.status == DocumentStatus::Superseded.as_str() {
            ApiError::wrong_state(
                resource(previous_id),
                DocumentStatus::Superseded.as_str(),
                "file a new version of it",
            )
        } else {
            ApiError::stale_etag(resource(previous_id))
        });
    }
    let previous = find(&txn, previous_id).await?;
    patients::require_active(&txn, previous.patient_id).await?;
    let kind = DocumentKind::from_stored(&previous.kind)
        .ok_or_else(|| ApiError::internal(format!("document {previous_id} has a bad kind")))?;
    let meta = DocumentMeta {
        title: changes.title.unwrap_or(previous.title),
        kind,
        content_type: changes.content_type.unwrap_or(previous.content_type),
        author: changes.author.unwrap_or(previous.author),
    };
    let row = insert(
        &txn,
        id,
        previous.lineage_id,
        previous.patient_id,
        previous.version + 1,
        Some(previous_id),
        &meta,
        content,
    )
    .await?;
    audit::record(
        &txn,
        actor,
        [Access::new(
            "CreateDocumentVersion",
            resource(id),
            previous.patient_id,
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// Answers a retried create with the document the first call filed.
async fn replay(
    txn: sea_orm::DatabaseTransaction,
    id: Uuid,
    action: &'static str,
    actor: &Actor,
) -> Result<Model, ApiError> {
    let existing = find(&txn, id).await?;
    audit::record(
        &txn,
        actor,
        [Access::new(action, resource(id), existing.patient_id)],
    )
    .await?;
    txn.commit().await?;
    Ok(existing)
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    lineage_id: Uuid,
    patient_id: Uuid,
    version: i32,
    supersedes_id: Option<Uuid>,
    meta: &DocumentMeta,
    content: Vec<u8>,
) -> Result<Model, ApiError> {
    let size_bytes = i64::try_from(content.len()).map_err(ApiError::internal)?;
    let row = document::ActiveModel {
        id: Set(id),
        lineage_id: Set(lineage_id),
        patient_id: Set(patient_id),
        version: Set(version),
        status: Set(DocumentStatus::Current.as_str().to_owned()),
        title: Set(meta.title.clone()),
        kind: Set(meta.kind.as_str().to_owned()),
        content_type: Set(meta.content_type.clone()),
        author: Set(meta.author.clone()),
        size_bytes: Set(size_bytes),
        sha256: Set(sha256_hex(&content)),
        supersedes_id: Set(supersedes_id),
        create_time: Set(Utc::now()),
        revision: Set(1),
    };
    let inserted = row.insert(db).await?;
    content::Entity::insert(content::ActiveModel {
        document_id: Set(id),
        content: Set(content),
    })
    .exec(db)
    .await?;
    Ok(inserted)
}

/// One document version, audited.
pub async fn get(db: &DatabaseConnection, id: Uuid, actor: &Actor) -> Result<Model, ApiError> {
    let txn = begin_write(db).await?;
    let row = find(&txn, id).await?;
    audit::record(
        &txn,
        actor,
        [Access::new("GetDocument", resource(id), row.patient_id)],
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// A document version with its content, audited.
pub async fn get_content(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<(Model, Vec<u8>), ApiError> {
    let txn = begin_write(db).await?;
    let row = find(&txn, id).await?;
    let stored = content::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal(format!("document {id} has no content")))?;
    audit::record(
        &txn,
        actor,
        [Access::new(
            "GetDocumentContent",
            resource(id),
            row.patient_id,
        )],
    )
    .await?;
    txn.commit().await?;
    Ok((row, stored.content))
}

/// One page of a patient's documents in filing order; the listing is audited
/// once.
pub async fn list(
    db: &DatabaseConnection,
    filter: &DocumentFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<Model>, ApiError> {
    let txn = begin_write(db).await?;
    patients::find(&txn, filter.patient_id).await?;
    let mut query = Documents::find().filter(Column::PatientId.eq(filter.patient_id));
    if let Some(kind) = filter.kind {
        query = query.filter(Column::Kind.eq(kind.as_str()));
    }
    if let Some(from) = filter.filed_from {
        query = query.filter(Column::CreateTime.gte(from));
    }
    if let Some(before) = filter.filed_before {
        query = query.filter(Column::CreateTime.lt(before));
    }
    if !filter.include_superseded {
        query = query.filter(Column::Status.eq(DocumentStatus::Current.as_str()));
    }
    let rows = page.by_id(query, Column::Id)?.all(&txn).await?;
    let listing = format!("{}/documents", patients::resource(filter.patient_id));
    audit::record(
        &txn,
        actor,
        [Access::new("ListDocuments", listing, filter.patient_id)],
    )
    .await?;
    txn.commit().await?;
    Ok(rows)
}
