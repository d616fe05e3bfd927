//! Enquiries, and the staff on duty that routing chooses among with their
//! open enquiries counted.

use chrono::{DateTime, Utc};
use medsec_platform::audit::{self, Actor};
use medsec_platform::idempotency::{Claimed, RequestKey};
use medsec_platform::pagination::PageRequest;
use medsec_platform::{ApiError, PreconditionKind};
use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection, EntityTrait as _,
    FromQueryResult, QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use uuid::Uuid;

use super::entities::{duty_shift, enquiry, staff};
use super::{IDEMPOTENCY_KEYS, get_row, insert};
use crate::domain::EnquiryStatus;
use crate::domain::enquiry::{Candidate, NewEnquiry, choose};

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<enquiry::Model, ApiError> {
    get_row::<enquiry::Entity>(db, "enquiry", id).await
}

/// Reads an enquiry, auditing the read.
pub async fn read(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<enquiry::Model, ApiError> {
    audit::read_one(db, actor, async |txn| get(txn, id).await).await
}

/// Routes an enquiry to someone on duty at `at` and records it, in one
/// transaction. A retry with the same key replays the first routing
/// (whoever was on duty then, even if the shift has since ended).
pub async fn route(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    new: NewEnquiry,
    at: DateTime<Utc>,
    actor: &Actor,
) -> Result<enquiry::Model, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "RouteEnquiry", key, async |txn, claimed| {
            let id = match claimed {
                Claimed::Replay(id) => {
                    return audit::recorded(txn, actor, get(txn, id).await?).await;
                }
                Claimed::New(id) => id,
            };
            let on_duty = on_duty(txn, at.timestamp()).await?;
            let routing = choose(new.category, new.urgency, &on_duty).map_err(|nobody| {
                ApiError::precondition(PreconditionKind::Rota, "duty_shifts", nobody.to_string())
            })?;
            let row = enquiry::Model {
                id,
                category: new.category.as_str().to_owned(),
                urgency: new.urgency.as_str().to_owned(),
                patient_id: new.patient_id,
                summary: new.summary,
                assigned_staff_id: routing.assignee,
                routing_reason: routing.reason,
                status: EnquiryStatus::Open.as_str().to_owned(),
                notes: String::new(),
                create_time: Utc::now(),
                resolve_time: None,
            };
            insert(txn, row).await?;
            audit::recorded(txn, actor, get(txn, id).await?).await
        })
        .await
}

/// One staff member on duty, as the candidates query reads them.
#[derive(Debug, FromQueryResult)]
struct OnDuty {
    id: Uuid,
    name: String,
    skills: String,
    duty_manager: bool,
    open_enquiries: i64,
}

/// The staff on duty at `at` (epoch seconds), each once, with how many
/// open enquiries each holds: one query.
pub async fn on_duty(conn: &impl ConnectionTrait, at: i64) -> Result<Vec<Candidate>, ApiError> {
    let on_shift = Query::select()
        .column(duty_shift::Column::StaffId)
        .from(duty_shift::Entity)
        .cond_where(super::staff::on_duty_at(at))
        .to_owned();
    let open = Query::select()
        .expr(Expr::col((enquiry::Entity, enquiry::Column::Id)).count())
        .from(enquiry::Entity)
        .and_where(
            Expr::col((enquiry::Entity, enquiry::Column::AssignedStaffId))
                .equals((staff::Entity, staff::Column::Id)),
        )
        .and_where(
            Expr::col((enquiry::Entity, enquiry::Column::Status)).eq(EnquiryStatus::Open.as_str()),
        )
        .to_owned();
    let rows = staff::Entity::find()
        .select_only()
        .columns([
            staff::Column::Id,
            staff::Column::Name,
            staff::Column::Skills,
            staff::Column::DutyManager,
        ])
        .expr_as(
            Expr::SubQuery(None, Box::new(open.into())),
            "open_enquiries",
        )
        .filter(staff::Column::Id.in_subquery(on_shift))
        .order_by_asc(staff::Column::Id)
        .into_model::<OnDuty>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Candidate {
            id: row.id,
            name: row.name,
            skills: staff::skills(&row.skills),
            duty_manager: row.duty_manager,
            open_enquiries: u64::try_from(row.open_enquiries).unwrap_or(0),
        })
        .collect())
}

/// Resolves an open enquiry with the notes of how.
pub async fn resolve(
    db: &DatabaseConnection,
    id: Uuid,
    notes: &str,
    now: DateTime<Utc>,
    actor: &Actor,
) -> Result<enquiry::Model, ApiError> {
    audit::audited_one(db, actor, async |txn| resolve_in(txn, id, notes, now).await).await
}

async fn resolve_in(
    db: &impl ConnectionTrait,
    id: Uuid,
    notes: &str,
    now: DateTime<Utc>,
) -> Result<enquiry::Model, ApiError> {
    let changed = enquiry::Entity::update_many()
        .col_expr(
            enquiry::Column::Status,
            Expr::value(EnquiryStatus::Resolved.as_str()),
        )
        .col_expr(enquiry::Column::Notes, Expr::value(notes.to_owned()))
        .col_expr(enquiry::Column::ResolveTime, Expr::value(now))
        .filter(enquiry::Column::Id.eq(id))
        .filter(enquiry::Column::Status.eq(EnquiryStatus::Open.as_str()))
        .exec(db)
        .await?
        .rows_affected;
    let current = get(db, id).await?;
    if changed == 0 {
        return Err(ApiError::wrong_state(
            format!("enquiries/{id}"),
            &current.status,
            "resolve",
        ));
    }
    Ok(current)
}

/// Filters of ListEnquiries.
#[derive(Debug, Default)]
pub struct EnquiryFilter {
    pub staff_id: Option<Uuid>,
    pub status: Option<EnquiryStatus>,
}

/// A page of enquiries; every enquiry served is audited, with the filters'
/// hash.
pub async fn list(
    db: &DatabaseConnection,
    filter: &EnquiryFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<enquiry::Model>, ApiError> {
    let query = enquiry::Entity::find().filter(
        Condition::all()
            .add_option(
                filter
                    .staff_id
                    .map(|id| enquiry::Column::AssignedStaffId.eq(id)),
            )
            .add_option(
                filter
                    .status
                    .map(|s| enquiry::Column::Status.eq(s.as_str())),
            ),
    );
    audit::read(db, actor, async |txn| {
        let rows = page.by_id(query, enquiry::Column::Id)?.all(txn).await?;
        let served = audit::served(page, &rows, "enquiries");
        Ok((rows, served))
    })
    .await
}
