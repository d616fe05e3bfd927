//! `explain`: why a referral got the slot it got.
//!
//! Lists the referral's cost terms in its slot, then every feasible slot on an
//! earlier date (or the same date, when cheaper) that it did not get, with the
//! referrals holding it. In an optimal solution each of those holders would
//! cost more to move than the referral would save.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::evaluate;
use crate::model::Solution;
use crate::validate::{Problem, date_of};

/// A human-readable explanation, or why none can be given.
pub fn explain(
    problem: &Problem,
    solution: &Solution,
    referral_id: &str,
) -> Result<String, String> {
    let assignment = evaluate::assignment_of(problem, solution)?;
    let r = problem
        .referrals
        .iter()
        .position(|x| x.id == referral_id)
        .ok_or_else(|| format!("unknown referral {referral_id:?}"))?;
    let referral = &problem.referrals[r];
    let p = referral.priority.index();
    let weights = &problem.weights;
    let mut out = String::new();
    let clinician =
        |c: Option<u32>| c.map_or("-".to_owned(), |c| problem.clinicians[c as usize].clone());
    let _ = writeln!(
        out,
        "referral {} (patient {}, {} {}, priority {}, clock start {}, due {})",
        referral.id,
        problem.patients[referral.patient as usize],
        problem.specialties[referral.specialty as usize],
        match referral.kind {
            crate::model::Kind::New => "new",
            crate::model::Kind::FollowUp => "follow_up",
        },
        referral.priority,
        date_of(referral.clock_start),
        date_of(referral.due),
    );
    let _ = writeln!(
        out,
        "  first possible date {}, unavailable {:?}, required clinician {}, preferred clinician {}",
        date_of(referral.first_day),
        referral
            .unavailable
            .iter()
            .map(|&(a, b)| format!("{}..{}", date_of(a), date_of(b)))
            .collect::<Vec<_>>(),
        clinician(referral.required_clinician),
        clinician(referral.preferred_clinician),
    );

    let holders: HashMap<usize, Vec<usize>> =
        assignment
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (x, s)| {
                if let Some(s) = *s {
                    m.entry(s).or_default().push(x);
                }
                m
            });
    let own_cost = match assignment[r] {
        Some(s) => {
            let slot = &problem.slots[s];
            let w = i64::from(slot.day - referral.clock_start);
            let breach = slot.day > referral.due;
            let missed = referral
                .preferred_clinician
                .is_some_and(|c| c != slot.clinician);
            let cost = problem.cost(r, slot.day, slot.clinician);
            let _ = writeln!(
                out,
                "got slot {} on {} with {}: cost {cost} = wait {w} days: {} x {w}^2 = {}; breach {}; preference {}",
                slot.id,
                date_of(slot.day),
                problem.clinicians[slot.clinician as usize],
                weights.priority[p],
                weights.priority[p] * w * w,
                if breach { weights.breach[p] } else { 0 },
                if missed { weights.preference } else { 0 },
            );
            cost
        }
        None => {
            let cost = problem.unallocated_cost(r);
            let _ = writeln!(
                out,
                "unallocated: cost {cost} (as if seen {} plus {} for not being seen{})",
                date_of(problem.horizon_end + 1),
                weights.unallocated,
                if problem.breaches(r, None) {
                    ", with breach"
                } else {
                    ""
                },
            );
            cost
        }
    };
    let own_day = assignment[r].map_or(problem.horizon_end + 1, |s| problem.slots[s].day);

    let mut earlier: Vec<usize> = (0..problem.slots.len())
        .filter(|&s| Some(s) != assignment[r] && problem.feasible(r, s))
        .filter(|&s| {
            let slot = &problem.slots[s];
            slot.day < own_day
                || (slot.day == own_day && problem.cost(r, slot.day, slot.clinician) < own_cost)
        })
        .collect();
    earlier.sort_by(|&a, &b| {
        (problem.slots[a].day, &problem.slots[a].id)
            .cmp(&(problem.slots[b].day, &problem.slots[b].id))
    });
    if earlier.is_empty() {
        let _ = writeln!(out, "no earlier feasible slot exists");
    } else {
        let _ = writeln!(
            out,
            "{} earlier feasible slots it did not get:",
            earlier.len()
        );
    }
    for s in earlier {
        let slot = &problem.slots[s];
        let here = problem.cost(r, slot.day, slot.clinician);
        let held = holders.get(&s).map(Vec::as_slice).unwrap_or(&[]);
        let mut line = format!(
            "  {} {} {}: would cost {here} (saving {})",
            slot.id,
            date_of(slot.day),
            problem.clinicians[slot.clinician as usize],
            own_cost - here
        );
        if held.is_empty() {
            line.push_str("; free, but the patient has another appointment that day");
        }
        for &x in held {
            let other = &problem.referrals[x];
            let _ = write!(
                line,
                "; held by {} ({}, clock start {}, due {}, cost there {})",
                other.id,
                other.priority,
                date_of(other.clock_start),
                date_of(other.due),
                problem.cost(x, slot.day, slot.clinician),
            );
        }
        let _ = writeln!(out, "{line}");
    }
    Ok(out)
}
