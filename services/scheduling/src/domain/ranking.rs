//! BookBestSlot's ranking: the free slots one waiting referral may take,
//! cheapest by the allocation model's cost first, and what the request may
//! ask of it.

use medsec_platform::{ApiError, PreconditionKind};
use medsec_scheduler::model::Instance;
use uuid::Uuid;

use super::ReferralStatus;
use super::allocation::{Horizon, ModelError, Terms, row_id};

/// Candidates returned unless the request asks for another number.
pub const DEFAULT_CANDIDATES: usize = 10;
/// The most candidates returned, whatever the request asks.
pub const MAX_CANDIDATES: usize = 100;

/// How many candidates a request's `max_candidates` asks for: 0 is the
/// default, more than the most is the most, a negative number is refused.
pub fn wanted(max_candidates: i32) -> Result<usize, &'static str> {
    match usize::try_from(max_candidates) {
        Err(_) => Err("must not be negative"),
        Ok(0) => Ok(DEFAULT_CANDIDATES),
        Ok(n) => Ok(n.min(MAX_CANDIDATES)),
    }
}

/// A slot the referral may take, with the model's terms of taking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub slot_id: Uuid,
    pub terms: Terms,
}

/// The slots of `instance` that the referral `referral_id` may take (every
/// feasibility rule of the model), cheapest first, then earlier (by
/// `start_at`, the slot's start instant), then by id, so the order is
/// stable; at most `wanted`. A slot without a start instant is left out.
pub fn rank(
    instance: &Instance,
    referral_id: Uuid,
    start_at: impl Fn(Uuid) -> Option<i64>,
    wanted: usize,
) -> Result<Vec<Candidate>, ModelError> {
    let problem = medsec_scheduler::validate(instance)?;
    let id = referral_id.to_string();
    let Some(r) = problem.referrals.iter().position(|p| p.id == id) else {
        return Ok(Vec::new());
    };
    let mut ranked = Vec::new();
    for s in (0..problem.slots.len()).filter(|&s| problem.feasible(r, s)) {
        let slot_id = row_id(&problem.slots[s].id)?;
        if let Some(start) = start_at(slot_id) {
            ranked.push((Terms::of(&problem, r, s), start, slot_id));
        }
    }
    ranked.sort_by_key(|&(terms, start, slot_id)| (terms.cost, start, slot_id));
    Ok(ranked
        .into_iter()
        .take(wanted)
        .map(|(terms, _, slot_id)| Candidate { slot_id, terms })
        .collect())
}

/// Only a waiting referral is booked a best slot.
pub fn ensure_waiting(referral_id: Uuid, status: &str) -> Result<(), ApiError> {
    if status == ReferralStatus::Waiting.as_str() {
        return Ok(());
    }
    Err(ApiError::wrong_state(
        format!("referrals/{referral_id}"),
        status,
        "book a slot for it",
    ))
}

/// The refusal when none of the ranked slots could be booked, with why each
/// could not.
pub fn none_bookable(referral_id: Uuid, horizon: Horizon, reasons: &[String]) -> ApiError {
    let subject = format!("referrals/{referral_id}");
    let why = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    };
    ApiError::precondition(
        PreconditionKind::State,
        subject.clone(),
        format!(
            "{subject} has no bookable slot between {} and {}: cannot book{why}",
            horizon.start, horizon.end
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::allocation::tests::{id, instance, referral, slot};
    use crate::domain::tests::date;
    use medsec_scheduler::model::{DateRange, Kind, Priority};

    #[test]
    fn max_candidates_defaults_caps_and_refuses_negatives() {
        assert_eq!(wanted(0), Ok(DEFAULT_CANDIDATES));
        assert_eq!(wanted(3), Ok(3));
        assert_eq!(wanted(1_000), Ok(MAX_CANDIDATES));
        assert_eq!(wanted(-1), Err("must not be negative"));
    }

    /// Slots 10-15 start in id order at 09:00 on their day, except where
    /// `start_at` is overridden.
    fn start(overrides: &[(u128, i64)]) -> impl Fn(Uuid) -> Option<i64> {
        let overrides = overrides.to_vec();
        move |slot_id| {
            let n = (10..16).find(|&n| id(n) == slot_id)?;
            let at = overrides.iter().find(|(o, _)| *o == n).map(|(_, at)| *at);
            Some(at.unwrap_or(i64::try_from(n).unwrap() * 100))
        }
    }

    #[test]
    fn cheapest_first_then_earlier_then_by_id() {
        let mut ada = referral(1, Priority::Routine, "2026-05-01");
        ada.preferred_clinician = Some(id(90).to_string());
        let slots = vec![
            slot(10, 90, "2026-06-10"),
            slot(11, 91, "2026-06-03"),
            slot(12, 90, "2026-06-03"),
            // Same day and clinician as 12, starting earlier.
            slot(13, 90, "2026-06-03"),
            // Same as 12 in every way but its id.
            slot(14, 90, "2026-06-03"),
        ];
        let ranked = rank(
            &instance(slots, vec![ada]),
            id(1),
            start(&[(13, 1), (14, 1200)]),
            10,
        )
        .unwrap();
        let order: Vec<_> = ranked.iter().map(|c| c.slot_id).collect();
        assert_eq!(order, [id(13), id(12), id(14), id(11), id(10)]);
        assert_eq!(ranked[0].terms.cost, 33 * 33);
        assert_eq!(ranked[3].terms.cost, 33 * 33 + 20, "preference missed");
        assert!(ranked[3].terms.preference_missed);
        assert_eq!(ranked[4].terms.wait_days, 40);
    }

    #[test]
    fn only_feasible_slots_with_a_start_are_ranked_up_to_the_number_wanted() {
        let mut ada = referral(1, Priority::Urgent, "2026-05-01");
        ada.unavailable = vec![DateRange {
            from: date("2026-06-02"),
            to: date("2026-06-02"),
        }];
        ada.required_clinician = Some(id(90).to_string());
        let mut follow_up = slot(13, 90, "2026-06-05");
        follow_up.kind = Kind::FollowUp;
        let slots = vec![
            slot(10, 90, "2026-06-02"), // she is away
            slot(11, 91, "2026-06-03"), // not her required clinician
            slot(12, 90, "2026-06-04"),
            follow_up,
            slot(14, 90, "2026-06-06"),
            slot(15, 90, "2026-06-07"),
        ];
        let bob = referral(2, Priority::Routine, "2026-01-01");
        let instance = instance(slots, vec![ada, bob]);
        let ranked = rank(&instance, id(1), start(&[]), 10).unwrap();
        let order: Vec<_> = ranked.iter().map(|c| c.slot_id).collect();
        assert_eq!(order, [id(12), id(14), id(15)]);
        let first_two = rank(&instance, id(1), start(&[]), 2).unwrap();
        assert_eq!(first_two[..], ranked[..2]);
        let unknown_start = |slot_id: Uuid| (slot_id != id(12)).then_some(0);
        let ranked = rank(&instance, id(1), unknown_start, 10).unwrap();
        assert!(ranked.iter().all(|c| c.slot_id != id(12)));
        assert!(rank(&instance, id(7), start(&[]), 10).unwrap().is_empty());
    }

    #[test]
    fn refusals_name_the_referral_and_why() {
        let referral_id = id(1);
        assert!(ensure_waiting(referral_id, "waiting").is_ok());
        let error = ensure_waiting(referral_id, "booked").unwrap_err();
        assert!(error.to_string().contains("is booked: cannot book a slot"));
        let horizon = Horizon {
            start: date("2026-06-01"),
            end: date("2026-06-30"),
        };
        let error = none_bookable(referral_id, horizon, &["slot x: full".into()]);
        assert_eq!(
            error.to_string(),
            format!(
                "referrals/{referral_id} has no bookable slot between 2026-06-01 and \
                 2026-06-30: cannot book (slot x: full)"
            )
        );
        assert!(
            none_bookable(referral_id, horizon, &[])
                .to_string()
                .ends_with("cannot book")
        );
    }
}
