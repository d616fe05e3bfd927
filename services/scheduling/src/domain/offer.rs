//! OfferFreedSlot's rules: only a free slot is offered, to the waiting
//! referral the allocation model places in it, and held at most
//! [`MAX_HOLD`] ahead; and how a slot's state is spelled in a refusal.

use chrono::{DateTime, Duration, Utc};
use medsec_platform::{ApiError, PreconditionKind};
use uuid::Uuid;

use super::allocation::{Placement, Solved};
use super::diary::SlotState;

/// How far ahead an offer may hold a slot.
pub const MAX_HOLD: Duration = Duration::days(14);

/// A slot's state as FHIR (Slot.status) and the API's messages spell it.
pub fn spelled(state: SlotState) -> &'static str {
    match state {
        SlotState::Free => "free",
        SlotState::BusyTentative => "busy-tentative",
        SlotState::Busy => "busy",
        SlotState::BusyUnavailable => "busy-unavailable",
    }
}

/// A hold's end as requested at `now`: in the future and at most
/// [`MAX_HOLD`] ahead.
pub fn hold_until(until: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, &'static str> {
    if until <= now {
        Err("must be in the future")
    } else if until - now > MAX_HOLD {
        Err("must be at most 14 days ahead")
    } else {
        Ok(until)
    }
}

/// Only a free slot is offered.
pub fn ensure_free(slot_id: Uuid, state: SlotState) -> Result<(), ApiError> {
    if state == SlotState::Free {
        return Ok(());
    }
    Err(ApiError::wrong_state(
        format!("slots/{slot_id}"),
        spelled(state),
        "offer it",
    ))
}

/// The referral offered the slot: the one the model places in it (an
/// instance of that one slot with one place, over a one-day horizon, so the
/// optimum is the waiting referral that gains most from being seen then
/// rather than after the horizon).
pub fn choose(slot_id: Uuid, solved: &Solved) -> Result<Placement, ApiError> {
    solved.first_placed()?.ok_or_else(|| {
        let subject = format!("slots/{slot_id}");
        ApiError::precondition(
            PreconditionKind::State,
            subject.clone(),
            format!("{subject} suits no waiting referral: cannot offer it"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::allocation::tests::{id, instance, referral, slot};
    use crate::domain::allocation::{Horizon, solve};
    use crate::domain::tests::date;
    use medsec_scheduler::model::{Horizon as ModelHorizon, Priority};

    #[test]
    fn states_are_spelled_as_fhir_does() {
        assert_eq!(spelled(SlotState::Free), "free");
        assert_eq!(spelled(SlotState::BusyTentative), "busy-tentative");
        assert_eq!(spelled(SlotState::Busy), "busy");
        assert_eq!(spelled(SlotState::BusyUnavailable), "busy-unavailable");
    }

    #[test]
    fn a_hold_ends_in_the_future_within_fourteen_days() {
        let now = Utc::now();
        assert!(hold_until(now + Duration::hours(2), now).is_ok());
        assert!(hold_until(now + MAX_HOLD, now).is_ok());
        assert_eq!(hold_until(now, now), Err("must be in the future"));
        assert_eq!(
            hold_until(now + MAX_HOLD + Duration::seconds(1), now),
            Err("must be at most 14 days ahead")
        );
    }

    #[test]
    fn only_a_free_slot_is_offered() {
        assert!(ensure_free(id(1), SlotState::Free).is_ok());
        let refused = ensure_free(id(1), SlotState::BusyTentative)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("is busy-tentative: cannot offer it"),
            "{refused}"
        );
    }

    #[test]
    fn the_slot_goes_to_whoever_gains_most_from_it() {
        let day = Horizon::day(date("2026-06-01"));
        let one_slot = |referrals| {
            let mut instance = instance(vec![slot(10, 90, "2026-06-01")], referrals);
            instance.horizon = ModelHorizon {
                start: day.start,
                end: day.end,
            };
            solve(&instance, &medsec_scheduler::SolveOptions::default()).unwrap()
        };
        let solved = one_slot(vec![
            referral(1, Priority::Routine, "2026-03-01"),
            referral(2, Priority::Routine, "2026-01-05"),
        ]);
        let chosen = choose(id(10), &solved).unwrap();
        assert_eq!(chosen.referral_id, id(2), "the longest wait");
        assert_eq!(chosen.terms.wait_days, 147);
        let nobody = one_slot(Vec::new());
        let refused = choose(id(10), &nobody).unwrap_err().to_string();
        assert!(refused.contains("suits no waiting referral"), "{refused}");
    }
}
