//! The waiting list: referrals and their RTT clocks.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Actor};
use medsec_platform::idempotency::{Claimed, RequestKey};
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection, EntityTrait as _,
    PaginatorTrait as _, QueryFilter as _, UpdateMany,
};
use uuid::Uuid;

use super::entities::{appointment, periods, referral};
use super::staff::get_staff;
use super::{IDEMPOTENCY_KEYS, events, get_row, insert};
use crate::domain::referral::{Funding, NewReferral, ReferralChange, clinician_misfit};
use crate::domain::staff::clinician_of;
use crate::domain::{AppointmentStatus, ReferralStatus, Role};

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<referral::Model, ApiError> {
    get_row::<referral::Entity>(db, "referral", id).await
}

/// An update of referral `id`. Every change bumps its revision (what
/// etags and guarded writes compare) and its update time.
pub(super) fn changing(id: Uuid) -> UpdateMany<referral::Entity> {
    referral::Entity::update_many()
        .col_expr(referral::Column::UpdateTime, Expr::value(Utc::now()))
        .col_expr(
            referral::Column::Revision,
            Expr::col(referral::Column::Revision).add(1),
        )
        .filter(referral::Column::Id.eq(id))
}

/// An update moving referral `id` from status `from` to `to`; it changes
/// nothing when the referral is no longer `from`.
pub(super) fn move_status(
    id: Uuid,
    from: ReferralStatus,
    to: ReferralStatus,
) -> UpdateMany<referral::Entity> {
    changing(id)
        .col_expr(referral::Column::Status, Expr::value(to.as_str()))
        .filter(referral::Column::Status.eq(from.as_str()))
}

/// Puts a referral on the waiting list; the clinicians it names must be
/// clinicians of its specialty.
pub async fn create(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    new: NewReferral,
    actor: &Actor,
) -> Result<referral::Model, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "CreateReferral", key, async |txn, claimed| {
            if let Claimed::New(id) = claimed {
                check_clinicians(txn, &new.specialty, new.clinicians()).await?;
                let row = row(id, new);
                let added = events::referral_added(&row);
                insert(txn, row).await?;
                events::raise(txn, [added]).await?;
            }
            audit::recorded(txn, actor, get(txn, claimed.id()).await?).await
        })
        .await
}

/// A new referral's row: waiting, at revision 1.
fn row(id: Uuid, new: NewReferral) -> referral::Model {
    let now = Utc::now();
    let (funding_kind, insurer_name, policy_number, preauthorisation_code) =
        funding_columns(&new.funding);
    referral::Model {
        id,
        patient_id: new.patient_id,
        specialty: new.specialty,
        priority: new.priority.as_str().to_owned(),
        clock_start: new.clock_start,
        kind: new.kind.as_str().to_owned(),
        earliest: new.earliest,
        unavailable: periods::write(&new.unavailable),
        required_clinician: new.required_clinician,
        preferred_clinician: new.preferred_clinician,
        status: ReferralStatus::Waiting.as_str().to_owned(),
        removal_reason: None,
        create_time: now,
        update_time: now,
        revision: 1,
        funding_kind,
        insurer_name,
        policy_number,
        preauthorisation_code,
    }
}

/// The stored columns of `funding`.
fn funding_columns(funding: &Funding) -> (String, Option<String>, Option<String>, Option<String>) {
    let kind = funding.kind().to_owned();
    match funding {
        Funding::Insurer {
            name,
            policy_number,
            preauthorisation_code,
        } => (
            kind,
            Some(name.clone()),
            Some(policy_number.clone()),
            preauthorisation_code.clone(),
        ),
        Funding::Nhs | Funding::SelfPay => (kind, None, None, None),
    }
}

/// Reads a referral, auditing the read.
pub async fn read(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<referral::Model, ApiError> {
    audit::read_one(db, actor, async |txn| get(txn, id).await).await
}

/// Each clinician named (by the field naming them) exists and is a
/// clinician of `specialty`.
async fn check_clinicians(
    conn: &impl ConnectionTrait,
    specialty: &str,
    clinicians: [(&'static str, Option<Uuid>); 2],
) -> Result<(), ApiError> {
    for (field, clinician) in clinicians {
        let Some(id) = clinician else {
            continue;
        };
        let member = get_staff(conn, id).await?;
        clinician_of(
            Role::from_stored(&member.role),
            &member.specialty_list(),
            specialty,
        )
        .map_err(|misfit| ApiError::invalid(field, clinician_misfit(misfit)))?;
    }
    Ok(())
}

/// Filters of ListReferrals.
#[derive(Debug, Default)]
pub struct ReferralFilter {
    pub specialty: Option<String>,
    pub status: Option<ReferralStatus>,
    pub patient_id: Option<Uuid>,
}

/// A page of the waiting list; every referral served is audited, with the
/// filters' hash.
pub async fn list(
    db: &DatabaseConnection,
    filter: &ReferralFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<referral::Model>, ApiError> {
    use referral::Column;
    let query = referral::Entity::find().filter(
        Condition::all()
            .add_option(filter.specialty.as_deref().map(|s| Column::Specialty.eq(s)))
            .add_option(filter.status.map(|s| Column::Status.eq(s.as_str())))
            .add_option(filter.patient_id.map(|id| Column::PatientId.eq(id))),
    );
    audit::read(db, actor, async |txn| {
        let rows = page.by_id(query, referral::Column::Id)?.all(txn).await?;
        let served = audit::served(page, &rows, "referrals");
        Ok((rows, served))
    })
    .await
}

/// Changes a waiting or booked referral, under an optional etag; the
/// clinicians it names must be clinicians of the referral's specialty. The
/// write is guarded by the revision read, so a concurrent change makes this
/// one lose cleanly (ABORTED) rather than overwrite it.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    expected_revision: Option<i64>,
    change: ReferralChange,
    actor: &Actor,
) -> Result<referral::Model, ApiError> {
    audit::audited_one(db, actor, async |txn| {
        update_in(txn, id, expected_revision, change).await
    })
    .await
}

async fn update_in(
    txn: &impl ConnectionTrait,
    id: Uuid,
    expected_revision: Option<i64>,
    change: ReferralChange,
) -> Result<referral::Model, ApiError> {
    let current = get(txn, id).await?;
    check_clinicians(txn, &current.specialty, change.clinicians()).await?;
    let paths = change.paths();
    if current.status == ReferralStatus::Removed.as_str() {
        return Err(ApiError::wrong_state(
            format!("referrals/{id}"),
            &current.status,
            "update",
        ));
    }
    if expected_revision.is_some_and(|revision| revision != current.revision) {
        return Err(ApiError::stale_etag(format!("referrals/{id}")));
    }
    let mut update = changing(id)
        .filter(referral::Column::Revision.eq(current.revision))
        .filter(referral::Column::Status.ne(ReferralStatus::Removed.as_str()));
    if let Some(priority) = change.priority {
        update = update.col_expr(referral::Column::Priority, Expr::value(priority.as_str()));
    }
    if let Some(earliest) = change.earliest {
        update = update.col_expr(referral::Column::Earliest, Expr::value(earliest));
    }
    if let Some(unavailable) = change.unavailable {
        update = update.col_expr(
            referral::Column::Unavailable,
            Expr::value(periods::write(&unavailable)),
        );
    }
    if let Some(clinician) = change.required_clinician {
        update = update.col_expr(referral::Column::RequiredClinician, Expr::value(clinician));
    }
    if let Some(clinician) = change.preferred_clinician {
        update = update.col_expr(referral::Column::PreferredClinician, Expr::value(clinician));
    }
    if let Some(funding) = &change.funding {
        let (kind, insurer, policy, preauthorisation) = funding_columns(funding);
        update = update
            .col_expr(referral::Column::FundingKind, Expr::value(kind))
            .col_expr(referral::Column::InsurerName, Expr::value(insurer))
            .col_expr(referral::Column::PolicyNumber, Expr::value(policy))
            .col_expr(
                referral::Column::PreauthorisationCode,
                Expr::value(preauthorisation),
            );
    }
    let changed = update.exec(txn).await?.rows_affected;
    if changed == 0 {
        let now = get(txn, id).await?;
        return Err(if now.status == ReferralStatus::Removed.as_str() {
            ApiError::wrong_state(format!("referrals/{id}"), &now.status, "update")
        } else {
            ApiError::stale_etag(format!("referrals/{id}"))
        });
    }
    let updated = get(txn, id).await?;
    events::raise(txn, [events::referral_updated(&updated, paths)]).await?;
    Ok(updated)
}

/// Takes a referral off the list; nothing is deleted. A waiting referral can
/// always be removed; a booked one once no appointment of it is still to
/// come or in progress (a treated patient's pathway is closed this way).
pub async fn remove(
    db: &DatabaseConnection,
    id: Uuid,
    reason: &str,
    actor: &Actor,
) -> Result<referral::Model, ApiError> {
    audit::audited_one(db, actor, async |txn| remove_in(txn, id, reason).await).await
}

pub(crate) async fn remove_in(
    txn: &impl ConnectionTrait,
    id: Uuid,
    reason: &str,
) -> Result<referral::Model, ApiError> {
    let current = get(txn, id).await?;
    let live = appointment::Entity::find()
        .filter(appointment::Column::ReferralId.eq(id))
        .filter(appointment::Column::Status.is_in([
            AppointmentStatus::Booked.as_str(),
            AppointmentStatus::Arrived.as_str(),
        ]))
        .count(txn)
        .await?;
    let removable = current.status == ReferralStatus::Waiting.as_str()
        || (current.status == ReferralStatus::Booked.as_str() && live == 0);
    if !removable {
        let why = if live > 0 {
            "remove it while an appointment is booked or in progress; cancel or complete it first"
        } else {
            "remove it"
        };
        return Err(ApiError::wrong_state(
            format!("referrals/{id}"),
            &current.status,
            why,
        ));
    }
    // Guarded by the revision read: a booking racing this removal bumps it.
    let changed = changing(id)
        .col_expr(
            referral::Column::Status,
            Expr::value(ReferralStatus::Removed.as_str()),
        )
        .col_expr(
            referral::Column::RemovalReason,
            Expr::value(reason.to_owned()),
        )
        .filter(referral::Column::Revision.eq(current.revision))
        .exec(txn)
        .await?
        .rows_affected;
    if changed == 0 {
        return Err(ApiError::stale_etag(format!("referrals/{id}")));
    }
    // A removed referral keeps no freed slot on hold.
    super::appointments::release_holds_for(txn, id).await?;
    let removed = get(txn, id).await?;
    events::raise(txn, events::referral_removed(&removed, reason)).await?;
    Ok(removed)
}

/// Every waiting referral of a specialty.
pub async fn waiting(
    db: &impl ConnectionTrait,
    specialty: &str,
) -> Result<Vec<referral::Model>, ApiError> {
    Ok(referral::Entity::find()
        .filter(referral::Column::Specialty.eq(specialty))
        .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()))
        .all(db)
        .await?)
}
