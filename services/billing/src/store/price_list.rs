//! The price list: versions of items by code, never overlapping in time.

use chrono::{NaiveDate, Utc};
use medsec_platform::idempotency::Claimed;
use medsec_platform::pagination::PageRequest;
use medsec_platform::{ApiError, PreconditionKind, db};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryTrait as _, Set,
};
use uuid::Uuid;

use super::entities::price_item::{ActiveModel, Column, Entity as PriceItems, Model};
use super::{IDEMPOTENCY_KEYS, RequestKey};

const RESOURCE: &str = "price item";

/// A validated new version.
#[derive(Debug, Clone)]
pub struct NewPriceItem {
    pub code: String,
    pub description: String,
    pub unit_price_pence: i64,
    pub vat_rate_basis_points: i32,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// Filters of ListPriceItems; its `Debug` form, naming every value, is the
/// fingerprint of its page tokens.
#[derive(Debug, Default, Clone)]
pub struct PriceFilter {
    pub code: Option<String>,
    pub valid_on: Option<NaiveDate>,
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    super::row::<PriceItems>(db, RESOURCE, id).await
}

/// The version of `code` valid on `date`, if any.
pub async fn valid_on(
    db: &impl ConnectionTrait,
    code: &str,
    date: NaiveDate,
) -> Result<Option<Model>, ApiError> {
    Ok(PriceItems::find()
        .filter(Column::Code.eq(code))
        .filter(valid_on_condition(date))
        .one(db)
        .await?)
}

fn valid_on_condition(date: NaiveDate) -> Condition {
    Condition::all().add(Column::ValidFrom.lte(date)).add(
        Condition::any()
            .add(Column::ValidTo.is_null())
            .add(Column::ValidTo.gte(date)),
    )
}

/// Adds a version, refusing one that overlaps another of its code.
pub async fn create(
    db: &DatabaseConnection,
    item: NewPriceItem,
    key: Option<&RequestKey>,
) -> Result<Model, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "CreatePriceItem", key, async |txn, claimed| {
            let id = match claimed {
                Claimed::Replay(id) => return get(txn, id).await,
                Claimed::New(id) => id,
            };
            lock_code(txn, &item.code).await?;
            if let Some(overlap) =
                find_overlap(txn, &item.code, item.valid_from, item.valid_to, None).await?
            {
                return Err(overlapping(&overlap));
            }
            Ok(ActiveModel {
                id: Set(id),
                code: Set(item.code),
                description: Set(item.description),
                unit_price_pence: Set(item.unit_price_pence),
                vat_rate_basis_points: Set(item.vat_rate_basis_points),
                valid_from: Set(item.valid_from),
                valid_to: Set(item.valid_to),
                create_time: Set(Utc::now()),
            }
            .insert(txn)
            .await?)
        })
        .await
}

/// Closes an open-ended version on `valid_to`.
pub async fn end(
    db: &DatabaseConnection,
    id: Uuid,
    valid_to: NaiveDate,
) -> Result<Model, ApiError> {
    db::write(db, async |txn| {
        // Write first: the code's lock row, found through the item.
        let lock = Query::update()
            .table("price_codes")
            .value("revision", Expr::col("revision").add(1))
            .and_where(
                Expr::col("code").in_subquery(
                    Query::select()
                        .column(Column::Code)
                        .from(PriceItems)
                        .and_where(Expr::col(Column::Id).eq(id))
                        .to_owned(),
                ),
            )
            .to_owned();
        if txn.execute(&lock).await?.rows_affected() == 0 {
            return Err(ApiError::not_found(RESOURCE, id.to_string()));
        }
        let item = get(txn, id).await?;
        if let Some(to) = item.valid_to {
            return Err(ApiError::wrong_state(
                format!("price_items/{id}"),
                &format!("already ended on {to}"),
                "end it again",
            ));
        }
        if valid_to < item.valid_from {
            return Err(ApiError::invalid(
                "valid_to",
                "must not be before the version's valid_from",
            ));
        }
        if let Some(overlap) =
            find_overlap(txn, &item.code, item.valid_from, Some(valid_to), Some(id)).await?
        {
            return Err(overlapping(&overlap));
        }
        let mut row: ActiveModel = item.into();
        row.valid_to = Set(Some(valid_to));
        Ok(row.update(txn).await?)
    })
    .await
}

/// Takes the per-code lock row (made on first use) by writing to it.
async fn lock_code(txn: &impl ConnectionTrait, code: &str) -> Result<(), ApiError> {
    let upsert = Query::insert()
        .into_table("price_codes")
        .columns(["code", "revision"])
        .values_panic([code.into(), 1_i64.into()])
        .on_conflict(
            OnConflict::column("code")
                .value("revision", Expr::col(("price_codes", "revision")).add(1))
                .to_owned(),
        )
        .to_owned();
    txn.execute(&upsert).await?;
    Ok(())
}

async fn find_overlap(
    txn: &impl ConnectionTrait,
    code: &str,
    from: NaiveDate,
    to: Option<NaiveDate>,
    except: Option<Uuid>,
) -> Result<Option<Model>, ApiError> {
    let mut query = PriceItems::find().filter(Column::Code.eq(code)).filter(
        Condition::any()
            .add(Column::ValidTo.is_null())
            .add(Column::ValidTo.gte(from)),
    );
    if let Some(to) = to {
        query = query.filter(Column::ValidFrom.lte(to));
    }
    if let Some(except) = except {
        query = query.filter(Column::Id.ne(except));
    }
    Ok(query.one(txn).await?)
}

fn overlapping(existing: &Model) -> ApiError {
    let until = existing
        .valid_to
        .map_or_else(|| "open-ended".to_owned(), |to| format!("to {to}"));
    ApiError::precondition(
        PreconditionKind::Overlap,
        format!("price_items/{}", existing.id),
        format!(
            "overlaps price item {} for {} valid from {} {until}; end it first",
            existing.id, existing.code, existing.valid_from
        ),
    )
}

/// One page of versions by id (creation) order.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &PriceFilter,
    page: &PageRequest,
) -> Result<Vec<Model>, ApiError> {
    let query = PriceItems::find()
        .apply_if(filter.code.as_deref(), |q, code| {
            q.filter(Column::Code.eq(code))
        })
        .apply_if(filter.valid_on, |q, date| {
            q.filter(valid_on_condition(date))
        });
    Ok(page.by_id(query, Column::Id)?.all(db).await?)
}
