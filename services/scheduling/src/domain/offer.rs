//! OfferFreedSlot's rules: only a free slot is offered, to the waiting
//! referral the allocation model places in it, and held at most
//! [`MAX_HOLD`] ahead.

use chrono::{DateTime, Duration, Utc};
use medsec_platform::{ApiError, PreconditionKind};
use uuid::Uuid;

use super::allocation::{Placement, Solved};

/// How far ahead an offer may hold a slot.
pub const MAX_HOLD: Duration = Duration::days(14);

/// A slot's FHIR state (Slot.status), as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Free,
    /// Held for one referral until the hold lapses.
    BusyTentative,
    /// Every place booked.
    Busy,
    /// The clinician is away.
    BusyUnavailable,
}

impl SlotState {
    /// The state of a slot with `booked` of `capacity` places taken, made
    /// busy-unavailable or not, under a live hold or not.
    pub fn of(unavailable: bool, booked: i32, capacity: i32, held: bool) -> Self {
        if unavailable {
            Self::BusyUnavailable
        } else if booked >= capacity {
            Self::Busy
        } else if held {
            Self::BusyTentative
        } else {
            Self::Free
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::BusyTentative => "busy-tentative",
            Self::Busy => "busy",
            Self::BusyUnavailable => "busy-unavailable",
        }
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
        state.as_str(),
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
    use crate::domain::allocation::tests::{date, id, instance, referral, slot};
    use crate::domain::allocation::{Horizon, solve};
    use medsec_scheduler::model::{Horizon as ModelHorizon, Priority};

    #[test]
    fn the_state_of_a_slot() {
        assert_eq!(SlotState::of(false, 0, 1, false), SlotState::Free);
        assert_eq!(SlotState::of(false, 1, 2, true), SlotState::BusyTentative);
        assert_eq!(SlotState::of(false, 2, 2, true), SlotState::Busy);
        assert_eq!(SlotState::of(true, 0, 2, false), SlotState::BusyUnavailable);
        assert_eq!(SlotState::BusyTentative.as_str(), "busy-tentative");
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
        let refused = ensure_free(id(1), SlotState::Busy).unwrap_err().to_string();
        assert!(refused.contains("is busy: cannot offer it"), "{refused}");
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
            solve(&instance).unwrap()
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
