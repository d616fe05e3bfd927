//! The greedy baseline: what a booking clerk would do by hand.
//!
//! Referrals are taken by priority, then due date, then clock start (then id, so
//! the result is deterministic); each takes the earliest feasible free slot, a
//! slot with its preferred clinician winning a tie on the same date. It respects
//! every rule of the model, so its objective is an upper bound the exact solver
//! must match or beat.

use std::collections::{HashMap, HashSet};

use crate::evaluate::Assignment;
use crate::model::Kind;
use crate::validate::Problem;

/// Slots of one (specialty, kind), sorted by (date, id), inside the horizon only.
pub(crate) fn slot_groups(problem: &Problem) -> HashMap<(u32, Kind), Vec<usize>> {
    let mut groups: HashMap<(u32, Kind), Vec<usize>> = HashMap::new();
    for (s, slot) in problem.slots.iter().enumerate() {
        if slot.day < problem.horizon_start || slot.day > problem.horizon_end {
            continue;
        }
        groups
            .entry((slot.specialty, slot.kind))
            .or_default()
            .push(s);
    }
    for slots in groups.values_mut() {
        slots.sort_by(|&a, &b| {
            let (a, b) = (&problem.slots[a], &problem.slots[b]);
            (a.day, &a.id).cmp(&(b.day, &b.id))
        });
    }
    groups
}

/// "Next slot with free capacity at or after i", with path compression, so full
/// slots are skipped in near-constant time.
struct NextFree {
    parent: Vec<usize>,
}

impl NextFree {
    fn new(len: usize) -> Self {
        NextFree {
            parent: (0..=len).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        let mut root = i;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        while self.parent[i] != root {
            let next = self.parent[i];
            self.parent[i] = root;
            i = next;
        }
        root
    }

    fn close(&mut self, i: usize) {
        self.parent[i] = i + 1;
    }
}

/// Allocates greedily; see the module documentation for the rule.
pub fn greedy(problem: &Problem) -> Assignment {
    let groups = slot_groups(problem);
    let mut state: HashMap<(u32, Kind), (Vec<i64>, NextFree)> = groups
        .iter()
        .map(|(&key, slots)| {
            let free = slots.iter().map(|&s| problem.slots[s].capacity).collect();
            (key, (free, NextFree::new(slots.len())))
        })
        .collect();

    let mut order: Vec<usize> = (0..problem.referrals.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&problem.referrals[a], &problem.referrals[b]);
        (ra.priority, ra.due, ra.clock_start, &ra.id).cmp(&(
            rb.priority,
            rb.due,
            rb.clock_start,
            &rb.id,
        ))
    });

    let mut assignment: Assignment = vec![None; problem.referrals.len()];
    let mut patient_days: HashSet<(u32, i32)> = HashSet::new();
    for r in order {
        let referral = &problem.referrals[r];
        let key = (referral.specialty, referral.kind);
        let (Some(slots), Some((free, next))) = (groups.get(&key), state.get_mut(&key)) else {
            continue;
        };
        let mut pos = slots.partition_point(|&s| problem.slots[s].day < referral.first_day);
        let chosen = loop {
            let j = next.find(pos);
            if j >= slots.len() {
                break None;
            }
            let slot = &problem.slots[slots[j]];
            let fits = referral.available_on(slot.day, problem.horizon_end)
                && referral
                    .required_clinician
                    .is_none_or(|c| c == slot.clinician)
                && !patient_days.contains(&(referral.patient, slot.day));
            if !fits {
                pos = j + 1;
                continue;
            }
            // Same date, preferred clinician: cheaper, so a clerk would take it.
            let better = referral.preferred_clinician.and_then(|preferred| {
                let allowed = referral.required_clinician.is_none_or(|c| c == preferred);
                if slot.clinician == preferred || !allowed {
                    return None;
                }
                (j + 1..slots.len())
                    .take_while(|&k| problem.slots[slots[k]].day == slot.day)
                    .find(|&k| free[k] > 0 && problem.slots[slots[k]].clinician == preferred)
            });
            break Some(better.unwrap_or(j));
        };
        if let Some(j) = chosen {
            free[j] -= 1;
            if free[j] == 0 {
                next.close(j);
            }
            let s = slots[j];
            patient_days.insert((referral.patient, problem.slots[s].day));
            assignment[r] = Some(s);
        }
    }
    assignment
}
