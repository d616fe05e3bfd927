//! Committing a proposal: booking its open allocations through the booking
//! path, each in its own short transaction, and counting the outcome from
//! the rows.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Access, Actor, Audited as _};
use medsec_platform::db::{begin_write, savepoint};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, DatabaseConnection, DatabaseTransaction, EntityTrait as _, QueryFilter as _,
    QueryOrder as _,
};
use uuid::Uuid;

use super::proposals;
use super::refusal;
use crate::domain::allocation::ProposalStatus;
use crate::domain::appointment::Booking;
use crate::store::appointments::book_in;
use crate::store::entities::{proposal, proposal_allocation};

/// What a commit did.
#[derive(Debug)]
pub struct Committed {
    /// The proposal, its `booked` and `not_booked` counted from the
    /// allocation rows.
    pub proposal: proposal::Model,
    /// Appointments this call booked.
    pub booked: i32,
    /// Every allocation not booked, with its reason, by referral id.
    pub not_booked: Vec<proposal_allocation::Model>,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Books a proposal's open allocations (neither an appointment nor a
/// reason recorded) with [`book_allocations`]: one that is no longer valid
/// (slot full or held, referral no longer waiting, patient busy) records its
/// reason. A commit interrupted between bookings (an error, a crash, a
/// timeout) leaves open allocations, which the next commit books; after a
/// full commit there are none, so a retry books nothing and reports the same
/// outcome, counted from the rows. Each booking is audited in its
/// transaction; the outcome read, with the allocations not booked, in the
/// last.
pub async fn commit(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<Committed, ApiError> {
    proposals::get(db, id).await?;
    let first = proposal::Entity::update_many()
        .col_expr(
            proposal::Column::Status,
            Expr::value(ProposalStatus::Committed.as_str()),
        )
        .col_expr(proposal::Column::CommitTime, Expr::value(Some(Utc::now())))
        .filter(proposal::Column::Id.eq(id))
        .filter(proposal::Column::Status.eq(ProposalStatus::Proposed.as_str()))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    let open = proposal_allocation::Entity::find()
        .filter(proposal_allocation::Column::ProposalId.eq(id))
        .filter(proposal_allocation::Column::AppointmentId.is_null())
        .filter(proposal_allocation::Column::NotBookedReason.is_null())
        // Slots in id order within a specialty, as every booking path
        // orders its slot locks.
        .order_by_asc(proposal_allocation::Column::Specialty)
        .order_by_asc(proposal_allocation::Column::SlotId)
        .order_by_asc(proposal_allocation::Column::ReferralId)
        .all(db)
        .await?;
    let mut booked = 0;
    for group in open.chunk_by(|a, b| a.specialty == b.specialty) {
        booked += book_allocations(db, group, actor).await?;
    }
    audit::audited(db, actor, async |txn| {
        let committed = outcome(txn, id, booked).await?;
        if first || booked > 0 {
            crate::store::events::raise(txn, [committed_event(&committed)]).await?;
        }
        let mut accesses: Vec<_> = committed.not_booked.iter().map(|a| a.access()).collect();
        accesses.push(committed.proposal.access());
        Ok((committed, accesses))
    })
    .await
}

/// "This commit booked so many", for the proposal's specialties.
fn committed_event(committed: &Committed) -> medsec_platform::events::Event {
    use medsec_platform::events::{Event, pb};
    let specialties = committed
        .proposal
        .specialty
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Event::new(
        format!("proposals/{}", committed.proposal.id),
        pb::envelope::Data::ProposalCommitted(pb::ProposalCommitted {
            proposal_id: committed.proposal.id.to_string(),
            booked: committed.booked,
            specialties,
        }),
    )
}

/// A commit's outcome counted from the allocation rows, and the proposal's
/// counts set from it.
async fn outcome(txn: &DatabaseTransaction, id: Uuid, booked: i32) -> Result<Committed, ApiError> {
    let outcome = proposal_allocation::Entity::find()
        .filter(proposal_allocation::Column::ProposalId.eq(id))
        .order_by_asc(proposal_allocation::Column::ReferralId)
        .all(txn)
        .await?;
    let total_booked = count(
        outcome
            .iter()
            .filter(|a| a.appointment_id.is_some())
            .count(),
    );
    let not_booked: Vec<_> = outcome
        .into_iter()
        .filter(|a| a.not_booked_reason.is_some())
        .collect();
    proposal::Entity::update_many()
        .col_expr(proposal::Column::Booked, Expr::value(total_booked))
        .col_expr(
            proposal::Column::NotBooked,
            Expr::value(count(not_booked.len())),
        )
        .filter(proposal::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(Committed {
        proposal: proposals::get(txn, id).await?,
        booked,
        not_booked,
    })
}

/// How many times one booking is tried again after a transient fault
/// before the commit gives up (and leaves the allocation open for its retry).
const TRANSIENT_RETRIES: u32 = 5;

/// What booking one allocation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Booked,
    /// No longer valid (slot full or held, referral no longer waiting,
    /// patient busy): its reason is recorded on the row.
    Refused,
    /// Another commit of the proposal got to it first.
    Closed,
}

/// Books `allocations` in order, each in its own short write transaction
/// through the booking path ([`book_in`]): a commit holds no lock while it
/// moves on to the next booking, so it cannot deadlock with
/// `BookAppointment`, and other writers (SQLite's, too) take turns between
/// its bookings. A booking no longer valid records its reason on the row. A
/// transient fault (ABORTED, UNAVAILABLE) is never stored as a refusal: the
/// booking is tried again a few times, and then the call fails, leaving the
/// allocation open for the commit's retry. Returns how many it booked; each
/// booking is audited in its transaction.
pub async fn book_allocations(
    db: &DatabaseConnection,
    allocations: &[proposal_allocation::Model],
    actor: &Actor,
) -> Result<i32, ApiError> {
    let mut booked = 0;
    for allocation in allocations {
        let mut tries = 0;
        let attempt = loop {
            match book_allocation(db, allocation, actor).await {
                Err(error) if is_transient(&error) && tries < TRANSIENT_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10 << tries)).await;
                }
                other => break other?,
            }
        };
        if attempt == Attempt::Booked {
            booked += 1;
        }
    }
    Ok(booked)
}

fn is_transient(error: &ApiError) -> bool {
    matches!(error, ApiError::Aborted(_) | ApiError::Unavailable(_))
}

/// Claims one open allocation (a guarded write, so two commits of one
/// proposal never both book it) and books it, in one transaction.
async fn book_allocation(
    db: &DatabaseConnection,
    allocation: &proposal_allocation::Model,
    actor: &Actor,
) -> Result<Attempt, ApiError> {
    let txn = begin_write(db).await?;
    let appointment_id = Uuid::now_v7();
    let claimed = proposal_allocation::Entity::update_many()
        .col_expr(
            proposal_allocation::Column::AppointmentId,
            Expr::value(Some(appointment_id)),
        )
        .filter(proposal_allocation::Column::ProposalId.eq(allocation.proposal_id))
        .filter(proposal_allocation::Column::ReferralId.eq(allocation.referral_id))
        .filter(proposal_allocation::Column::AppointmentId.is_null())
        .filter(proposal_allocation::Column::NotBookedReason.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if claimed == 0 {
        return Ok(Attempt::Closed);
    }
    let attempt = savepoint(&txn).await?;
    let booking = Booking {
        slot_id: allocation.slot_id,
        patient_id: allocation.patient_id,
        referral_id: Some(allocation.referral_id),
        reason: format!("allocated by proposal {}", allocation.proposal_id),
    };
    let outcome = match book_in(&attempt, appointment_id, booking).await {
        Ok(()) => {
            attempt.commit().await?;
            let access = Access::patient(
                format!("appointments/{appointment_id}"),
                allocation.patient_id,
            );
            audit::record(&txn, actor, [access]).await?;
            Attempt::Booked
        }
        Err(error) => {
            attempt.rollback().await?;
            // A fault of ours or a passing one fails the attempt (the
            // transaction rolls back, the allocation stays open).
            let Some(reason) = refusal(&error) else {
                return Err(error);
            };
            record_refusal(&txn, allocation, reason).await?;
            Attempt::Refused
        }
    };
    txn.commit().await?;
    Ok(outcome)
}

async fn record_refusal(
    txn: &DatabaseTransaction,
    row: &proposal_allocation::Model,
    reason: String,
) -> Result<(), ApiError> {
    proposal_allocation::Entity::update_many()
        .col_expr(
            proposal_allocation::Column::AppointmentId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            proposal_allocation::Column::NotBookedReason,
            Expr::value(Some(reason)),
        )
        .filter(proposal_allocation::Column::ProposalId.eq(row.proposal_id))
        .filter(proposal_allocation::Column::ReferralId.eq(row.referral_id))
        .exec(txn)
        .await?;
    Ok(())
}
