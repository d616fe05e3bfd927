//! Clinical documents and their versions. Content lives in its own table so
//! listings never load it. Of two racing new versions of one document only
//! one finds it current (a guarded UPDATE supersedes it first).

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::idempotency::RequestKey;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter,
};
use uuid::Uuid;

use medsec_platform::audit::{self, Access, Actor, Audited};

use super::IDEMPOTENCY_KEYS;
use super::entities::document::{ActiveModel, Column, Entity as Documents, Model};
use super::entities::document_content;
use super::patients;
use crate::domain::documents::{
    DocumentKind, DocumentMeta, DocumentStatus, FiledRange, VersionChanges, sha256_hex,
};

const RESOURCE: &str = "document";

pub fn resource(id: Uuid) -> String {
    format!("documents/{id}")
}

impl Audited for Model {
    fn access(&self) -> Access {
        Access::patient(resource(self.id), self.patient_id)
    }
}

/// Filters of ListDocuments, validated.
#[derive(Debug, Clone)]
pub struct DocumentFilter {
    pub patient_id: Uuid,
    pub kind: Option<DocumentKind>,
    pub filed: FiledRange,
    pub include_superseded: bool,
}

/// Where a version stands in its document's history.
#[derive(Debug, Clone, Copy)]
struct Lineage {
    lineage_id: Uuid,
    version: i32,
    supersedes_id: Option<Uuid>,
}

impl Lineage {
    fn first(id: Uuid) -> Self {
        Self {
            lineage_id: id,
            version: 1,
            supersedes_id: None,
        }
    }

    fn after(previous: &Model) -> Self {
        Self {
            lineage_id: previous.lineage_id,
            version: previous.version + 1,
            supersedes_id: Some(previous.id),
        }
    }
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
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<Model, ApiError> {
    audit::create(
        db,
        &IDEMPOTENCY_KEYS,
        "CreateDocument",
        actor,
        key,
        find,
        async |txn, id| {
            patients::require_active(txn, patient_id).await?;
            insert(txn, id, patient_id, Lineage::first(id), &meta, content).await
        },
    )
    .await
}

/// Files a new version of the current document `previous_id`, which becomes
/// superseded in the same transaction.
pub async fn create_version(
    db: &DatabaseConnection,
    previous_id: Uuid,
    expected_revision: Option<i64>,
    changes: VersionChanges,
    content: Vec<u8>,
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<Model, ApiError> {
    audit::create(
        db,
        &IDEMPOTENCY_KEYS,
        "CreateDocumentVersion",
        actor,
        key,
        find,
        async |txn, id| {
            supersede(txn, previous_id, expected_revision).await?;
            let previous = find(txn, previous_id).await?;
            patients::require_active(txn, previous.patient_id).await?;
            let meta = stored_meta(&previous)?.revised(changes);
            let lineage = Lineage::after(&previous);
            insert(txn, id, previous.patient_id, lineage, &meta, content).await
        },
    )
    .await
}

/// Marks the current document `id` superseded, checking the etag: of two
/// racing new versions only one finds it current.
async fn supersede(
    db: &impl ConnectionTrait,
    id: Uuid,
    expected_revision: Option<i64>,
) -> Result<(), ApiError> {
    let (current, superseded) = (DocumentStatus::Current, DocumentStatus::Superseded);
    let mut supersede = Documents::update_many()
        .col_expr(Column::Status, Expr::value(superseded.as_str()))
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(current.as_str()));
    if let Some(revision) = expected_revision {
        supersede = supersede.filter(Column::Revision.eq(revision));
    }
    if supersede.exec(db).await?.rows_affected == 1 {
        return Ok(());
    }
    let previous = find(db, id).await?;
    Err(if previous.status == superseded.as_str() {
        ApiError::wrong_state(
            resource(id),
            superseded.as_str(),
            "file a new version of it",
        )
    } else {
        ApiError::stale_etag(resource(id))
    })
}

/// The description a stored version has.
fn stored_meta(row: &Model) -> Result<DocumentMeta, ApiError> {
    let kind = DocumentKind::from_stored(&row.kind)
        .ok_or_else(|| ApiError::internal(format!("document {} has a bad kind", row.id)))?;
    Ok(DocumentMeta {
        title: row.title.clone(),
        kind,
        content_type: row.content_type.clone(),
        author: row.author.clone(),
    })
}

async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    patient_id: Uuid,
    lineage: Lineage,
    meta: &DocumentMeta,
    content: Vec<u8>,
) -> Result<Model, ApiError> {
    let size_bytes = i64::try_from(content.len()).map_err(ApiError::internal)?;
    let inserted = ActiveModel {
        id: Set(id),
        lineage_id: Set(lineage.lineage_id),
        patient_id: Set(patient_id),
        version: Set(lineage.version),
        status: Set(DocumentStatus::Current.as_str().to_owned()),
        title: Set(meta.title.clone()),
        kind: Set(meta.kind.as_str().to_owned()),
        content_type: Set(meta.content_type.clone()),
        author: Set(meta.author.clone()),
        size_bytes: Set(size_bytes),
        sha256: Set(sha256_hex(&content)),
        supersedes_id: Set(lineage.supersedes_id),
        create_time: Set(Utc::now()),
        revision: Set(1),
    }
    .insert(db)
    .await?;
    document_content::Entity::insert(document_content::ActiveModel {
        document_id: Set(id),
        content: Set(content),
    })
    .exec(db)
    .await?;
    Ok(inserted)
}

/// One document version, audited.
pub async fn get(db: &DatabaseConnection, id: Uuid, actor: &Actor) -> Result<Model, ApiError> {
    audit::read_one(db, actor, async |txn| find(txn, id).await).await
}

/// A document version with its content, audited.
pub async fn get_content(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<(Model, Vec<u8>), ApiError> {
    audit::read(db, actor, async |txn| {
        let row = find(txn, id).await?;
        let stored = document_content::Entity::find_by_id(id)
            .one(txn)
            .await?
            .ok_or_else(|| ApiError::internal(format!("document {id} has no content")))?;
        let access = row.access();
        Ok(((row, stored.content), [access]))
    })
    .await
}

/// One page of a patient's documents in filing order; the listing is audited
/// once.
pub async fn list(
    db: &DatabaseConnection,
    filter: &DocumentFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<Model>, ApiError> {
    audit::read(db, actor, async |txn| {
        patients::find(txn, filter.patient_id).await?;
        let mut query = Documents::find().filter(Column::PatientId.eq(filter.patient_id));
        if let Some(kind) = filter.kind {
            query = query.filter(Column::Kind.eq(kind.as_str()));
        }
        if let Some(from) = filter.filed.from {
            query = query.filter(Column::CreateTime.gte(from));
        }
        if let Some(before) = filter.filed.before {
            query = query.filter(Column::CreateTime.lt(before));
        }
        if !filter.include_superseded {
            query = query.filter(Column::Status.eq(DocumentStatus::Current.as_str()));
        }
        let rows = page.by_id(query, Column::Id)?.all(txn).await?;
        let listing = format!("{}/documents", patients::resource(filter.patient_id));
        Ok((rows, [Access::patient(listing, filter.patient_id)]))
    })
    .await
}
