//! Test helpers for the solver's unit tests: tiny instances written by hand,
//! networks built by hand, and optima found by enumeration to check against.

use chrono::{Days, NaiveDate};

use super::network::{Arc, Bin, Class, Hub, Subproblem};
use crate::evaluate::{self, Assignment};
use crate::model::{Horizon, Instance, Kind, Priority, Referral, Slot};
use crate::validate::{self, Problem};

/// Day `offset` of the test horizon, which starts on day 0.
pub(crate) fn day(offset: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + Days::new(offset)
}

/// A new-patient slot of capacity `capacity` on day `offset`.
pub(crate) fn slot(id: &str, specialty: &str, clinician: &str, offset: u64, capacity: i64) -> Slot {
    Slot {
        id: id.to_owned(),
        specialty: specialty.to_owned(),
        clinician: clinician.to_owned(),
        date: day(offset),
        start: None,
        kind: Kind::New,
        capacity,
    }
}

/// A new referral whose clock started `waited` days before day 0.
pub(crate) fn referral(
    id: &str,
    patient: &str,
    specialty: &str,
    priority: Priority,
    waited: u64,
) -> Referral {
    Referral {
        id: id.to_owned(),
        patient: patient.to_owned(),
        specialty: specialty.to_owned(),
        priority,
        clock_start: day(0) - Days::new(waited),
        kind: Kind::New,
        earliest: None,
        unavailable: Vec::new(),
        required_clinician: None,
        preferred_clinician: None,
        due: None,
    }
}

/// The validated problem of these slots and referrals over days 0 to 6, with
/// the default weights.
pub(crate) fn problem(slots: Vec<Slot>, referrals: Vec<Referral>) -> Problem {
    problem_until(6, slots, referrals)
}

/// [`problem`] over days 0 to `last`.
pub(crate) fn problem_until(last: u64, slots: Vec<Slot>, referrals: Vec<Referral>) -> Problem {
    let instance = Instance {
        horizon: Horizon {
            start: day(0),
            end: day(last),
        },
        weights: Default::default(),
        slots,
        referrals,
    };
    validate::validate(&instance).unwrap()
}

/// The optimum of a problem by enumerating every allocation.
pub(crate) fn brute_force(problem: &Problem) -> i64 {
    fn go(problem: &Problem, assignment: &mut Assignment, best: &mut i64) {
        let r = assignment.len();
        if r == problem.referrals.len() {
            if let Ok(cost) = evaluate::check(problem, assignment) {
                *best = (*best).min(cost);
            }
            return;
        }
        assignment.push(None);
        go(problem, assignment, best);
        for s in 0..problem.slots.len() {
            if problem.feasible(r, s) {
                assignment[r] = Some(s);
                go(problem, assignment, best);
            }
        }
        assignment.pop();
    }
    let mut best = i64::MAX;
    go(problem, &mut Vec::new(), &mut best);
    best
}

/// A network by hand, for the flow and the certificate: `dates` dates, bins
/// given as (date, capacity) with clinician = bin index, each date's capacity
/// the sum of its bins', and classes of the given sizes. Members are
/// placeholder indices: the flow and the certificate only count them.
pub(crate) fn network(dates: usize, bins: &[(u32, i64)], class_sizes: &[usize]) -> Subproblem {
    let mut date_capacity = vec![0; dates];
    let mut date_bins = vec![Vec::new(); dates];
    let mut bin_of = std::collections::HashMap::new();
    for (b, &(date, capacity)) in bins.iter().enumerate() {
        date_capacity[date as usize] += capacity;
        date_bins[date as usize].push(b as u32);
        bin_of.insert((date, b as u32), b as u32);
    }
    let mut next = 0;
    let classes = class_sizes
        .iter()
        .map(|&size| {
            let members = (next..next + size).collect();
            next += size;
            Class {
                members,
                individual: false,
            }
        })
        .collect();
    Subproblem {
        specialty: 0,
        kind: Kind::New,
        dates: (0..dates as i32).collect(),
        date_capacity,
        date_slot_count: vec![0; dates],
        date_bins,
        bins: bins
            .iter()
            .enumerate()
            .map(|(b, &(date, capacity))| Bin {
                date,
                clinician: b as u32,
                capacity,
                slots: Vec::new(),
            })
            .collect(),
        bin_of,
        classes,
    }
}

/// An arc to a date hub.
pub(crate) fn to_date(date: u32, cost: i64) -> Arc {
    Arc {
        date,
        hub: Hub::Date(date),
        cost,
    }
}

/// A direct arc to a bin.
pub(crate) fn to_bin(sub: &Subproblem, bin: u32, cost: i64) -> Arc {
    Arc {
        date: sub.bins[bin as usize].date,
        hub: Hub::Bin(bin),
        cost,
    }
}

/// Units through each date row and each bin row, and out of each class.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Loads {
    pub class: Vec<i64>,
    pub date: Vec<i64>,
    pub bin: Vec<i64>,
}

pub(crate) fn loads(sub: &Subproblem, flows: &[Vec<(Arc, i64)>]) -> Loads {
    let mut loads = Loads {
        class: vec![0; sub.classes.len()],
        date: vec![0; sub.dates.len()],
        bin: vec![0; sub.bins.len()],
    };
    for (c, class_flows) in flows.iter().enumerate() {
        for (arc, units) in class_flows {
            loads.class[c] += units;
            loads.date[arc.date as usize] += units;
            if let Hub::Bin(b) = arc.hub {
                loads.bin[b as usize] += units;
            }
        }
    }
    loads
}

/// The relaxation's optimum over `offered` by enumerating every integral flow
/// (the matrix is totally unimodular, so integral flows reach the LP optimum).
pub(crate) fn brute_force_flow(sub: &Subproblem, offered: &[Vec<Arc>]) -> i64 {
    let arcs: Vec<(usize, Arc)> = offered
        .iter()
        .enumerate()
        .flat_map(|(c, arcs)| arcs.iter().map(move |&arc| (c, arc)))
        .collect();
    let mut left: Vec<i64> = sub.classes.iter().map(|c| c.members.len() as i64).collect();
    let mut date_left = sub.date_capacity.clone();
    let mut bin_left: Vec<i64> = sub.bins.iter().map(|b| b.capacity).collect();
    let mut best = 0;
    fn go(
        arcs: &[(usize, Arc)],
        left: &mut [i64],
        date_left: &mut [i64],
        bin_left: &mut [i64],
        value: i64,
        best: &mut i64,
    ) {
        let Some((&(c, arc), rest)) = arcs.split_first() else {
            *best = (*best).min(value);
            return;
        };
        let d = arc.date as usize;
        let mut most = left[c].min(date_left[d]);
        if let Hub::Bin(b) = arc.hub {
            most = most.min(bin_left[b as usize]);
        }
        for units in 0..=most.max(0) {
            left[c] -= units;
            date_left[d] -= units;
            if let Hub::Bin(b) = arc.hub {
                bin_left[b as usize] -= units;
            }
            go(
                rest,
                left,
                date_left,
                bin_left,
                value + units * arc.cost,
                best,
            );
            left[c] += units;
            date_left[d] += units;
            if let Hub::Bin(b) = arc.hub {
                bin_left[b as usize] += units;
            }
        }
    }
    go(
        &arcs,
        &mut left,
        &mut date_left,
        &mut bin_left,
        0,
        &mut best,
    );
    best
}

/// A small deterministic generator (SplitMix64) for families of test cases.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A value in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    /// A value in `low..=high`.
    pub(crate) fn between(&mut self, low: i64, high: i64) -> i64 {
        low + self.below((high - low + 1) as u64) as i64
    }
}
