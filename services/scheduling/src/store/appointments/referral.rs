//! What booking, cancelling and missing an appointment do to its referral:
//! `waiting -> booked` with the slot checked to fit it, and back to waiting
//! (its clock restarted after a first missed appointment).

use chrono::NaiveDate;
use medsec_platform::{ApiError, PreconditionKind};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::Expr;
use uuid::Uuid;

use super::places::release_holds_for;
use crate::domain::ReferralStatus;
use crate::store::entities::{referral, slot};
use crate::store::referrals::{self, move_status};

/// Marks a waiting referral booked, checking it fits the slot.
pub(super) async fn book_referral(
    txn: &impl ConnectionTrait,
    referral_id: Uuid,
    patient_id: Uuid,
    slot: &slot::Model,
) -> Result<(), ApiError> {
    let changed = move_status(referral_id, ReferralStatus::Waiting, ReferralStatus::Booked)
        .exec(txn)
        .await?
        .rows_affected;
    let referral = referrals::get(txn, referral_id).await?;
    if changed == 0 {
        return Err(ApiError::wrong_state(
            format!("referrals/{referral_id}"),
            &referral.status,
            "book",
        ));
    }
    // Booked here, the referral needs no slot kept for it elsewhere.
    release_holds_for(txn, referral_id).await?;
    if referral.patient_id != patient_id {
        return Err(ApiError::invalid(
            "referral_id",
            "is a referral of another patient",
        ));
    }
    check_fit(&referral, slot, "referral_id")
}

/// Whether a slot fits a referral as the allocation model requires (same
/// specialty and kind, not before the clock start or the earliest date, not
/// in an unavailable period, the required clinician's): checked whenever a
/// referral is booked or moved, so a booking never breaks a rule a proposal
/// would have kept. A mismatch the referral can never fit is
/// INVALID_ARGUMENT on `field`; one its current details rule out is
/// FAILED_PRECONDITION.
pub(super) fn check_fit(
    referral: &referral::Model,
    slot: &slot::Model,
    field: &str,
) -> Result<(), ApiError> {
    let (r, s) = (referral.id, slot.id);
    if referral.specialty != slot.specialty {
        return Err(ApiError::invalid(
            field,
            format!(
                "slots/{s} is {} but referrals/{r} is for {}",
                slot.specialty, referral.specialty
            ),
        ));
    }
    if referral.kind != slot.kind {
        return Err(ApiError::invalid(
            field,
            format!(
                "slots/{s} is a {} slot but referrals/{r} needs a {} one",
                slot.kind, referral.kind
            ),
        ));
    }
    let unfit = |why: String| {
        ApiError::precondition(
            PreconditionKind::Fit,
            format!("referrals/{r}"),
            format!(
                "slots/{s} on {} does not fit referrals/{r}: {why}",
                slot.date
            ),
        )
    };
    if slot.date < referral.clock_start {
        return Err(unfit(format!(
            "it is before the clock start {}",
            referral.clock_start
        )));
    }
    if let Some(earliest) = referral.earliest
        && slot.date < earliest
    {
        return Err(unfit(format!("it is before the earliest date {earliest}")));
    }
    let unavailable = referral.unavailable_periods().ok_or_else(|| {
        ApiError::internal(format!("referral {r} has unreadable unavailable periods"))
    })?;
    if let Some(period) = unavailable.iter().find(|p| p.contains(slot.date)) {
        return Err(unfit(format!(
            "the patient is unavailable from {} to {}",
            period.from, period.to
        )));
    }
    if let Some(required) = referral.required_clinician
        && required != slot.clinician_id
    {
        return Err(unfit(format!(
            "it requires clinician {required}, the slot is {}'s",
            slot.clinician_id
        )));
    }
    Ok(())
}

/// Moves a referral back to the waiting list; with `restart`, its RTT
/// clock starts again on that date.
pub(super) async fn return_referral(
    txn: &impl ConnectionTrait,
    referral_id: Uuid,
    restart: Option<NaiveDate>,
) -> Result<(), ApiError> {
    let mut update = move_status(referral_id, ReferralStatus::Booked, ReferralStatus::Waiting);
    if let Some(date) = restart {
        update = update.col_expr(referral::Column::ClockStart, Expr::value(date));
    }
    update.exec(txn).await?;
    Ok(())
}
