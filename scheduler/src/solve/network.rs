//! The aggregated flow network of one (specialty, kind) sub-problem.
//!
//! Costs depend on a slot only through (date, clinician), and only through the
//! date for referrals with no clinician wish. So slots collapse into *bins*
//! (date, clinician) with summed capacity, bins of a date into a *date hub*, and
//! referrals with identical attributes into *classes*. A class sends flow either
//! to a date hub (any clinician that day) or straight to a bin (its required or
//! preferred clinician). Rows are: one per class (`<= size`), one per date
//! (`<=` the date's capacity, counting both kinds of arc), one per bin (`<=` its
//! capacity, counting direct arcs). Dates and bins form a laminar family and the
//! class rows a partition, so the matrix is totally unimodular and every LP
//! vertex is integral: continuous variables suffice.
//!
//! Referrals of patients with several referrals stay individual (singleton
//! classes) because the patient-per-day rule needs them one by one.

use std::collections::HashMap;

use crate::model::{Kind, Priority};
use crate::validate::Problem;

/// Where an arc delivers: a date hub (any clinician) or one bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Hub {
    Date(u32),
    Bin(u32),
}

/// A possible destination of a class, with its reduced-to-unallocated cost
/// `cost - unallocated_cost` (negative when seeing the referral is worth it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arc {
    /// Index into [`Subproblem::dates`].
    pub date: u32,
    pub hub: Hub,
    pub cost: i64,
}

/// Slots of one (date, clinician) in one sub-problem.
#[derive(Debug, Clone)]
pub(crate) struct Bin {
    pub date: u32,
    pub clinician: u32,
    pub capacity: i64,
    /// Slot indices sorted by id.
    pub slots: Vec<usize>,
}

/// Referrals with identical attributes (or one referral of a multi-referral patient).
#[derive(Debug, Clone)]
pub(crate) struct Class {
    /// Referral indices sorted by id.
    pub members: Vec<usize>,
    /// True for a referral of a patient holding several referrals.
    pub individual: bool,
}

impl Class {
    pub(crate) fn representative(&self) -> usize {
        self.members[0]
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Subproblem {
    pub specialty: u32,
    pub kind: Kind,
    /// Days with slots, ascending.
    pub dates: Vec<i32>,
    pub date_capacity: Vec<i64>,
    pub date_slot_count: Vec<u64>,
    /// Bins of each date, sorted by clinician name.
    pub date_bins: Vec<Vec<u32>>,
    pub bins: Vec<Bin>,
    pub bin_of: HashMap<(u32, u32), u32>,
    pub classes: Vec<Class>,
}

/// The attributes that determine a referral's costs and feasibility.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClassKey {
    priority: Priority,
    clock_start: i32,
    due: i32,
    first_day: i32,
    unavailable: Vec<(i32, i32)>,
    required: Option<u32>,
    preferred: Option<u32>,
}

/// Builds one sub-problem per (specialty, kind) that has referrals, in a fixed
/// order (specialty name, then kind) so results never depend on hashing.
pub(crate) fn build(problem: &Problem, threads: usize) -> Vec<Subproblem> {
    let mut referrals_per_patient = vec![0_u32; problem.patients.len()];
    for referral in &problem.referrals {
        referrals_per_patient[referral.patient as usize] += 1;
    }

    let mut keys: Vec<(u32, Kind)> = problem
        .referrals
        .iter()
        .map(|r| (r.specialty, r.kind))
        .collect();
    keys.sort_by(|a, b| {
        (&problem.specialties[a.0 as usize], a.1).cmp(&(&problem.specialties[b.0 as usize], b.1))
    });
    keys.dedup();
    let index: HashMap<(u32, Kind), usize> =
        keys.iter().enumerate().map(|(i, &k)| (k, i)).collect();

    let mut slots_of: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    for (s, slot) in problem.slots.iter().enumerate() {
        if slot.day < problem.horizon_start || slot.day > problem.horizon_end {
            continue;
        }
        if let Some(&i) = index.get(&(slot.specialty, slot.kind)) {
            slots_of[i].push(s);
        }
    }
    let mut referrals_of: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    for (r, referral) in problem.referrals.iter().enumerate() {
        if let Some(&i) = index.get(&(referral.specialty, referral.kind)) {
            referrals_of[i].push(r);
        }
    }

    // Sub-problems are independent: built on the worker threads, kept in
    // key order.
    super::parallel_map(keys.len(), threads, |i| {
        let (specialty, kind) = keys[i];
        let mut sub = bins_of(problem, specialty, kind, slots_of[i].clone());
        sub.classes = classes_of(problem, referrals_of[i].clone(), &referrals_per_patient);
        sub
    })
}

fn bins_of(problem: &Problem, specialty: u32, kind: Kind, mut slots: Vec<usize>) -> Subproblem {
    slots.sort_by(|&a, &b| problem.slots[a].id.cmp(&problem.slots[b].id));
    let mut dates: Vec<i32> = slots.iter().map(|&s| problem.slots[s].day).collect();
    dates.sort_unstable();
    dates.dedup();
    let mut date_capacity = vec![0_i64; dates.len()];
    let mut date_slot_count = vec![0_u64; dates.len()];
    let mut bins: Vec<Bin> = Vec::new();
    let mut bin_of: HashMap<(u32, u32), u32> = HashMap::new();
    for s in slots {
        let slot = &problem.slots[s];
        let date = dates.partition_point(|&d| d < slot.day) as u32;
        date_capacity[date as usize] += slot.capacity;
        date_slot_count[date as usize] += 1;
        let b = *bin_of.entry((date, slot.clinician)).or_insert_with(|| {
            bins.push(Bin {
                date,
                clinician: slot.clinician,
                capacity: 0,
                slots: Vec::new(),
            });
            (bins.len() - 1) as u32
        });
        let bin = &mut bins[b as usize];
        bin.capacity += slot.capacity;
        bin.slots.push(s);
    }
    let mut date_bins: Vec<Vec<u32>> = vec![Vec::new(); dates.len()];
    for (b, bin) in bins.iter().enumerate() {
        date_bins[bin.date as usize].push(b as u32);
    }
    for list in &mut date_bins {
        list.sort_by(|&a, &b| {
            problem.clinicians[bins[a as usize].clinician as usize]
                .cmp(&problem.clinicians[bins[b as usize].clinician as usize])
        });
    }
    Subproblem {
        specialty,
        kind,
        dates,
        date_capacity,
        date_slot_count,
        date_bins,
        bins,
        bin_of,
        classes: Vec::new(),
    }
}

fn classes_of(problem: &Problem, mut referrals: Vec<usize>, per_patient: &[u32]) -> Vec<Class> {
    referrals.sort_by(|&a, &b| problem.referrals[a].id.cmp(&problem.referrals[b].id));
    let mut classes: Vec<Class> = Vec::new();
    let mut class_of: HashMap<ClassKey, usize> = HashMap::new();
    for r in referrals {
        let referral = &problem.referrals[r];
        if per_patient[referral.patient as usize] > 1 {
            classes.push(Class {
                members: vec![r],
                individual: true,
            });
            continue;
        }
        let key = ClassKey {
            priority: referral.priority,
            clock_start: referral.clock_start,
            due: referral.due,
            first_day: referral.first_day,
            unavailable: referral.unavailable.clone(),
            required: referral.required_clinician,
            preferred: referral.preferred_clinician,
        };
        match class_of.get(&key) {
            Some(&c) => classes[c].members.push(r),
            None => {
                class_of.insert(key, classes.len());
                classes.push(Class {
                    members: vec![r],
                    individual: false,
                });
            }
        }
    }
    classes
}

impl Subproblem {
    /// Every arc of a class, ordered by (date, hub). Generated on demand rather
    /// than stored: it is cheap, and storing all arcs of a large instance would
    /// cost more memory than the rest of the solver.
    pub(crate) fn arcs(&self, problem: &Problem, class: &Class) -> Vec<Arc> {
        let r = class.representative();
        let referral = &problem.referrals[r];
        let unallocated = problem.unallocated_cost(r);
        let start = self.dates.partition_point(|&d| d < referral.first_day);
        let mut arcs = Vec::new();
        for (i, &day) in self.dates.iter().enumerate().skip(start) {
            if !referral.available_on(day, problem.horizon_end) {
                continue;
            }
            let date = i as u32;
            let direct = |clinician: u32| {
                self.bin_of.get(&(date, clinician)).map(|&b| Arc {
                    date,
                    hub: Hub::Bin(b),
                    cost: problem.cost(r, day, clinician) - unallocated,
                })
            };
            if let Some(required) = referral.required_clinician {
                arcs.extend(direct(required));
                continue;
            }
            // Through the date hub the clinician is unknown, so a referral with a
            // preference pays for missing it; the direct arc avoids the charge.
            // `u32::MAX` is no clinician, so the preference term applies if set.
            arcs.push(Arc {
                date,
                hub: Hub::Date(date),
                cost: problem.cost(r, day, u32::MAX) - unallocated,
            });
            if let Some(preferred) = referral.preferred_clinician {
                arcs.extend(direct(preferred));
            }
        }
        arcs
    }

    /// Referral-slot pairs satisfying every feasibility rule, for reporting size.
    pub(crate) fn feasible_pairs(&self, problem: &Problem) -> u64 {
        let arcs: Vec<Vec<Arc>> = self
            .classes
            .iter()
            .map(|class| self.arcs(problem, class))
            .collect();
        self.feasible_pairs_over(problem, &arcs)
    }

    /// [`Subproblem::feasible_pairs`] from every class's arcs, `arcs`, when
    /// they are at hand.
    pub(crate) fn feasible_pairs_over<A: AsRef<[Arc]>>(
        &self,
        problem: &Problem,
        arcs: &[A],
    ) -> u64 {
        let mut pairs = 0;
        for (class, arcs) in self.classes.iter().zip(arcs) {
            let referral = &problem.referrals[class.representative()];
            let mut per_member = 0;
            for arc in arcs.as_ref() {
                per_member += match arc.hub {
                    Hub::Date(d) => self.date_slot_count[d as usize],
                    Hub::Bin(b) if referral.required_clinician.is_some() => {
                        self.bins[b as usize].slots.len() as u64
                    }
                    // The direct arc of a preference duplicates the date hub's slots.
                    Hub::Bin(_) => 0,
                };
            }
            pairs += per_member * class.members.len() as u64;
        }
        pairs
    }

    pub(crate) fn name(&self, problem: &Problem) -> String {
        let kind = match self.kind {
            Kind::New => "new",
            Kind::FollowUp => "follow_up",
        };
        format!("{}/{kind}", problem.specialties[self.specialty as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DateRange, Referral};
    use crate::solve::testkit::{day, problem, referral, slot};
    use crate::validate::day_number;

    /// Cardiology places on days 1 and 2 (and one past the horizon), one
    /// dermatology place, and referrals that differ in one attribute each.
    fn clinic() -> Problem {
        let routine =
            |id: &str, patient: &str| referral(id, patient, "cardiology", Priority::Routine, 50);
        let with = |mut r: Referral, change: fn(&mut Referral)| {
            change(&mut r);
            r
        };
        problem(
            vec![
                slot("s1", "cardiology", "c1", 1, 1),
                slot("s2", "cardiology", "c1", 1, 2),
                slot("s3", "cardiology", "c0", 1, 1),
                slot("s4", "cardiology", "c1", 2, 1),
                slot("s5", "cardiology", "c1", 9, 1),
                slot("s6", "dermatology", "c2", 3, 1),
            ],
            vec![
                routine("r1", "p1"),
                routine("r2", "p2"),
                referral("r3", "p3", "cardiology", Priority::Routine, 51),
                referral("r4", "p4", "cardiology", Priority::Urgent, 10),
                referral("r5", "p4", "dermatology", Priority::Urgent, 10),
                with(routine("r6", "p6"), |r| {
                    r.preferred_clinician = Some("c1".to_owned())
                }),
                with(routine("r7", "p7"), |r| {
                    r.required_clinician = Some("c0".to_owned())
                }),
                with(routine("r8", "p8"), |r| {
                    r.unavailable = vec![DateRange {
                        from: day(2),
                        to: day(2),
                    }];
                }),
                with(routine("r9", "p9"), |r| r.earliest = Some(day(2))),
            ],
        )
    }

    fn ids(problem: &Problem, members: &[usize]) -> Vec<String> {
        members
            .iter()
            .map(|&r| problem.referrals[r].id.clone())
            .collect()
    }

    #[test]
    fn slots_collapse_into_bins_and_dates_and_referrals_into_classes() {
        let problem = clinic();
        let subs = build(&problem, 2);
        let names: Vec<String> = subs.iter().map(|s| s.name(&problem)).collect();
        assert_eq!(names, ["cardiology/new", "dermatology/new"]);
        let cardiology = &subs[0];
        // The day-9 place is past the horizon and left out.
        assert_eq!(cardiology.dates, [day_number(day(1)), day_number(day(2))]);
        assert_eq!(cardiology.date_capacity, [4, 1]);
        assert_eq!(cardiology.date_slot_count, [3, 1]);
        let bins: Vec<(u32, &str, i64, Vec<&str>)> = cardiology
            .bins
            .iter()
            .map(|b| {
                (
                    b.date,
                    problem.clinicians[b.clinician as usize].as_str(),
                    b.capacity,
                    b.slots
                        .iter()
                        .map(|&s| problem.slots[s].id.as_str())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            bins,
            [
                (0, "c1", 3, vec!["s1", "s2"]),
                (0, "c0", 1, vec!["s3"]),
                (1, "c1", 1, vec!["s4"]),
            ]
        );
        // Bins of a date in clinician-name order, whatever order they came in.
        assert_eq!(cardiology.date_bins, [vec![1, 0], vec![2]]);
        // r1 and r2 share every attribute; r4 belongs to a patient with two
        // referrals, so it stays on its own.
        let classes: Vec<(Vec<String>, bool)> = cardiology
            .classes
            .iter()
            .map(|c| (ids(&problem, &c.members), c.individual))
            .collect();
        let class = |members: &[&str], individual| {
            (
                members.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>(),
                individual,
            )
        };
        assert_eq!(
            classes,
            [
                class(&["r1", "r2"], false),
                class(&["r3"], false),
                class(&["r4"], true),
                class(&["r6"], false),
                class(&["r7"], false),
                class(&["r8"], false),
                class(&["r9"], false),
            ]
        );
        assert_eq!(
            subs[1]
                .classes
                .iter()
                .map(|c| c.individual)
                .collect::<Vec<_>>(),
            [true]
        );
    }

    #[test]
    fn arcs_follow_clinician_wishes_availability_and_earliest_dates() {
        // Routine, waited 50 days at day 0: 51² on day 1, 52² on day 2; staying
        // unallocated costs 57² + 1000 = 4249 (seen on day 7, the day after).
        let problem = clinic();
        let subs = build(&problem, 2);
        let sub = &subs[0];
        let arcs = |class: usize| -> Vec<(Hub, i64)> {
            sub.arcs(&problem, &sub.classes[class])
                .iter()
                .map(|a| (a.hub, a.cost))
                .collect()
        };
        let (day1, day2) = (2601 - 4249, 2704 - 4249);
        assert_eq!(arcs(0), [(Hub::Date(0), day1), (Hub::Date(1), day2)]);
        // Preferring c1: through the date hub the preference (20) is missed;
        // straight to c1's bin it is kept.
        assert_eq!(
            arcs(3),
            [
                (Hub::Date(0), day1 + 20),
                (Hub::Bin(0), day1),
                (Hub::Date(1), day2 + 20),
                (Hub::Bin(2), day2),
            ]
        );
        // Requiring c0: only c0's bin, which exists on day 1 only.
        assert_eq!(arcs(4), [(Hub::Bin(1), day1)]);
        // Unavailable on day 2; not before day 2.
        assert_eq!(arcs(5), [(Hub::Date(0), day1)]);
        assert_eq!(arcs(6), [(Hub::Date(1), day2)]);
    }

    #[test]
    fn feasible_pairs_counts_every_referral_slot_pair_the_rules_allow() {
        let problem = clinic();
        let counted: u64 = build(&problem, 1)
            .iter()
            .map(|s| s.feasible_pairs(&problem))
            .sum();
        let mut enumerated = 0;
        for r in 0..problem.referrals.len() {
            for s in 0..problem.slots.len() {
                enumerated += u64::from(problem.feasible(r, s));
            }
        }
        // By hand: 4 each for r1, r2, r3, r4, r6; 1 for r5, r7, r9; 3 for r8.
        assert_eq!(enumerated, 4 * 5 + 3 + 3);
        assert_eq!(counted, enumerated);
    }
}
