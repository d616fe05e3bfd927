//! Validation: turns a parsed [`Instance`] into a [`Problem`], the checked and
//! indexed form every algorithm in this crate works on.
//!
//! A `Problem` cannot exist for a malformed instance, so the solver, the greedy
//! baseline and `explain` never see duplicate ids, empty capacity or reversed
//! ranges. Dates become day numbers (`i32`, days from the common era) so that
//! waits are plain integer differences.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use crate::error::InstanceError;
use crate::model::{Instance, Kind, Priority, Weights};

/// Largest total objective we accept: the LP works in `f64`, which is exact for
/// integers below 2^53, and the proof of optimality relies on exact values.
const MAX_EXACT: i64 = 1 << 53;

/// A slot with its names interned.
#[derive(Debug, Clone)]
pub struct ProblemSlot {
    pub id: String,
    pub specialty: u32,
    pub clinician: u32,
    pub day: i32,
    pub kind: Kind,
    pub capacity: i64,
}

/// A referral with its names interned and its dates resolved.
#[derive(Debug, Clone)]
pub struct ProblemReferral {
    pub id: String,
    pub patient: u32,
    pub specialty: u32,
    pub priority: Priority,
    pub kind: Kind,
    pub clock_start: i32,
    /// `due` if given, else `clock_start + target_days[priority]`.
    pub due: i32,
    /// First day the referral may be seen: the latest of clock start, `earliest`
    /// and the horizon start.
    pub first_day: i32,
    /// Sorted, merged, inclusive day ranges.
    pub unavailable: Vec<(i32, i32)>,
    pub required_clinician: Option<u32>,
    pub preferred_clinician: Option<u32>,
}

/// A validated instance.
#[derive(Debug, Clone)]
pub struct Problem {
    pub horizon_start: i32,
    pub horizon_end: i32,
    pub weights: Weights,
    pub slots: Vec<ProblemSlot>,
    pub referrals: Vec<ProblemReferral>,
    pub specialties: Vec<String>,
    pub clinicians: Vec<String>,
    pub patients: Vec<String>,
    /// Position of each referral in id order, for cheap deterministic sorts.
    pub id_rank: Vec<u32>,
}

pub(crate) fn day_number(date: NaiveDate) -> i32 {
    date.num_days_from_ce()
}

/// The date of a day number; day numbers only ever come from valid dates plus
/// small offsets, so the fallback is unreachable in practice.
pub fn date_of(day: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day).unwrap_or(NaiveDate::MIN)
}

#[derive(Debug, Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        i
    }
}

fn slot_name(id: &str, index: usize) -> String {
    format!("slot {id:?} (slots[{index}])")
}

fn referral_name(id: &str, index: usize) -> String {
    format!("referral {id:?} (referrals[{index}])")
}

fn check_weights(weights: &Weights) -> Result<(), InstanceError> {
    for priority in Priority::ALL {
        let i = priority.index();
        for (table, value) in [
            ("target_days", weights.target_days[i]),
            ("priority", weights.priority[i]),
            ("breach", weights.breach[i]),
        ] {
            // Negative weights would reward waiting or breaching, which the model
            // does not mean; a target over ~270 years is a typo, and bounding it
            // keeps due-date arithmetic in range.
            let in_range = if table == "target_days" {
                (0..=100_000).contains(&value)
            } else {
                value >= 0
            };
            if !in_range {
                return Err(InstanceError::Invalid {
                    item: format!("weights.{table}.{priority}"),
                    message: format!("{value} is out of range"),
                });
            }
        }
    }
    for (name, value) in [
        ("preference", weights.preference),
        ("unallocated", weights.unallocated),
    ] {
        if value < 0 {
            return Err(InstanceError::Invalid {
                item: format!("weights.{name}"),
                message: format!("{value} is negative"),
            });
        }
    }
    Ok(())
}

/// Checks an instance and builds its [`Problem`]. The first error found is
/// returned, naming the item; nothing is partially accepted.
pub fn validate(instance: &Instance) -> Result<Problem, InstanceError> {
    let horizon_start = day_number(instance.horizon.start);
    let horizon_end = day_number(instance.horizon.end);
    if horizon_start > horizon_end {
        return Err(InstanceError::Horizon {
            start: instance.horizon.start.to_string(),
            end: instance.horizon.end.to_string(),
        });
    }
    let weights = Weights::with_overrides(&instance.weights);
    check_weights(&weights)?;

    let mut specialties = Interner::default();
    let mut clinicians = Interner::default();
    let mut patients = Interner::default();

    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(instance.slots.len());
    let mut slots = Vec::with_capacity(instance.slots.len());
    for (index, slot) in instance.slots.iter().enumerate() {
        let item = || slot_name(&slot.id, index);
        if seen.insert(slot.id.as_str(), index).is_some() {
            return Err(InstanceError::DuplicateId { item: item() });
        }
        for (field, value) in [
            ("id", &slot.id),
            ("specialty", &slot.specialty),
            ("clinician", &slot.clinician),
        ] {
            if value.is_empty() {
                return Err(InstanceError::Invalid {
                    item: item(),
                    message: format!("{field} is empty"),
                });
            }
        }
        if slot.capacity < 1 {
            return Err(InstanceError::Capacity {
                item: item(),
                capacity: slot.capacity,
            });
        }
        if slot.capacity > 1_000_000 {
            return Err(InstanceError::Invalid {
                item: item(),
                message: format!("capacity {} is implausibly large", slot.capacity),
            });
        }
        slots.push(ProblemSlot {
            id: slot.id.clone(),
            specialty: specialties.intern(&slot.specialty),
            clinician: clinicians.intern(&slot.clinician),
            day: day_number(slot.date),
            kind: slot.kind,
            capacity: slot.capacity,
        });
    }

    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(instance.referrals.len());
    let mut referrals = Vec::with_capacity(instance.referrals.len());
    let mut total_worst: i64 = 0;
    for (index, referral) in instance.referrals.iter().enumerate() {
        let item = || referral_name(&referral.id, index);
        if seen.insert(referral.id.as_str(), index).is_some() {
            return Err(InstanceError::DuplicateId { item: item() });
        }
        for (field, value) in [
            ("id", &referral.id),
            ("patient", &referral.patient),
            ("specialty", &referral.specialty),
        ] {
            if value.is_empty() {
                return Err(InstanceError::Invalid {
                    item: item(),
                    message: format!("{field} is empty"),
                });
            }
        }
        let mut unavailable = Vec::with_capacity(referral.unavailable.len());
        for range in &referral.unavailable {
            if range.from > range.to {
                return Err(InstanceError::RangeOrder {
                    item: item(),
                    from: range.from.to_string(),
                    to: range.to.to_string(),
                });
            }
            unavailable.push((day_number(range.from), day_number(range.to)));
        }
        unavailable.sort_unstable();
        let unavailable = merge_ranges(unavailable);

        let clock_start = day_number(referral.clock_start);
        let p = referral.priority.index();
        let due = match referral.due {
            Some(due) => day_number(due),
            None => clock_start + i32::try_from(weights.target_days[p]).unwrap_or(i32::MAX / 2),
        };
        let earliest = referral.earliest.map_or(clock_start, day_number);
        let first_day = clock_start.max(earliest).max(horizon_start);

        // The unallocated cost is the largest cost a referral can incur, so bounding
        // it (and the sum) bounds every objective value.
        let w = i64::from((horizon_end + 1 - clock_start).max(0));
        let worst = weights.priority[p]
            .checked_mul(w)
            .and_then(|v| v.checked_mul(w))
            .and_then(|v| v.checked_add(weights.breach[p]))
            .and_then(|v| v.checked_add(weights.unallocated))
            .and_then(|v| v.checked_add(weights.preference));
        total_worst = match worst.and_then(|v| total_worst.checked_add(v)) {
            Some(total) if total < MAX_EXACT => total,
            _ => {
                return Err(InstanceError::Invalid {
                    item: item(),
                    message: "costs too large to represent exactly (check clock_start and weights)"
                        .to_owned(),
                });
            }
        };

        referrals.push(ProblemReferral {
            id: referral.id.clone(),
            patient: patients.intern(&referral.patient),
            specialty: specialties.intern(&referral.specialty),
            priority: referral.priority,
            kind: referral.kind,
            clock_start,
            due,
            first_day,
            unavailable,
            required_clinician: referral
                .required_clinician
                .as_deref()
                .map(|c| clinicians.intern(c)),
            preferred_clinician: referral
                .preferred_clinician
                .as_deref()
                .map(|c| clinicians.intern(c)),
        });
    }

    let mut by_id: Vec<usize> = (0..referrals.len()).collect();
    by_id.sort_by(|&a, &b| referrals[a].id.cmp(&referrals[b].id));
    let mut id_rank = vec![0_u32; referrals.len()];
    for (rank, &r) in by_id.iter().enumerate() {
        id_rank[r] = rank as u32;
    }
    Ok(Problem {
        id_rank,
        horizon_start,
        horizon_end,
        weights,
        slots,
        referrals,
        specialties: specialties.names,
        clinicians: clinicians.names,
        patients: patients.names,
    })
}

fn merge_ranges(sorted: Vec<(i32, i32)>) -> Vec<(i32, i32)> {
    let mut merged: Vec<(i32, i32)> = Vec::with_capacity(sorted.len());
    for (from, to) in sorted {
        match merged.last_mut() {
            Some(last) if from <= last.1.saturating_add(1) => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

impl ProblemReferral {
    /// Whether the referral can attend on `day` (ignoring clinician and slot kind).
    pub fn available_on(&self, day: i32, horizon_end: i32) -> bool {
        if day < self.first_day || day > horizon_end {
            return false;
        }
        // Ranges are sorted and disjoint: find the last one starting on or before `day`.
        let after = self.unavailable.partition_point(|&(from, _)| from <= day);
        after == 0 || self.unavailable[after - 1].1 < day
    }
}

impl Problem {
    /// Whether referral `r` may take slot `s` (every rule of the model).
    pub fn feasible(&self, r: usize, s: usize) -> bool {
        let referral = &self.referrals[r];
        let slot = &self.slots[s];
        slot.specialty == referral.specialty
            && slot.kind == referral.kind
            && referral
                .required_clinician
                .is_none_or(|c| c == slot.clinician)
            && referral.available_on(slot.day, self.horizon_end)
    }

    /// Cost of seeing referral `r` on `day` with `clinician` (the model's `cost`).
    pub fn cost(&self, r: usize, day: i32, clinician: u32) -> i64 {
        let referral = &self.referrals[r];
        let p = referral.priority.index();
        let w = i64::from(day - referral.clock_start);
        let mut cost = self.weights.priority[p] * w * w;
        if day > referral.due {
            cost += self.weights.breach[p];
        }
        if referral
            .preferred_clinician
            .is_some_and(|preferred| preferred != clinician)
        {
            cost += self.weights.preference;
        }
        cost
    }

    /// Cost of leaving referral `r` unallocated (the model's `unallocated`).
    pub fn unallocated_cost(&self, r: usize) -> i64 {
        let referral = &self.referrals[r];
        let p = referral.priority.index();
        let w = i64::from((self.horizon_end + 1 - referral.clock_start).max(0));
        let mut cost = self.weights.priority[p] * w * w + self.weights.unallocated;
        if self.horizon_end + 1 > referral.due {
            cost += self.weights.breach[p];
        }
        cost
    }

    /// Whether the referral breaches if seen on `day` (`None`: unallocated).
    pub fn breaches(&self, r: usize, day: Option<i32>) -> bool {
        day.unwrap_or(self.horizon_end + 1) > self.referrals[r].due
    }
}
