//! A generator of realistic instances, deterministic for a seed.
//!
//! The shape follows an NHS trust's outpatient waiting list: a backlog with a
//! priority mix (two-week-wait cancer referrals, urgent, routine), long waiters
//! past 52 weeks, new referrals arriving during the horizon, follow-ups tied to
//! the clinician who saw the patient, patients' unavailable dates, clinician
//! leave (no clinics that week), a few preferred clinicians and earliest dates,
//! and patients holding several referrals. Capacity is set a little below demand
//! so that the allocation matters and some referrals breach.
//!
//! The random source is a hand-written SplitMix64 rather than the `rand` crate:
//! the instance for a seed must never change when a dependency is upgraded, and
//! generator algorithms of `rand` are not stable across major versions.

use chrono::{Datelike, Days, NaiveDate, Weekday};

use crate::model::{DateRange, Horizon, Instance, Kind, Priority, Referral, Slot, WeightOverrides};

/// Size and seed of a generated instance.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions {
    pub referrals: usize,
    pub specialties: usize,
    pub weeks: u32,
    pub seed: u64,
}

/// How a generated list departs from the realistic shape, for stress tests
/// and benchmarks of the patient-per-day rule. The default changes nothing:
/// [`generate`] and [`generate_with`] with `Shape::default()` give the same
/// instance for the same options.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shape {
    /// Share of patients holding two referrals (0 to 1), paired at random over
    /// the whole list (so within a specialty, or across two, in proportion to
    /// their sizes), the two referred the same day with the same priority.
    /// `None` keeps the realistic list, where about one referral in
    /// twenty-five belongs to a patient already on it. With one or two
    /// specialties and a share of 0.7-0.9 this makes clash-dense lists: most
    /// patients' two referrals compete for the same early dates.
    pub multi_referral_share: Option<f64>,
}

const SPECIALTY_NAMES: [&str; 20] = [
    "cardiology",
    "dermatology",
    "ent",
    "gastroenterology",
    "general_surgery",
    "gynaecology",
    "neurology",
    "ophthalmology",
    "orthopaedics",
    "respiratory",
    "rheumatology",
    "urology",
    "endocrinology",
    "haematology",
    "nephrology",
    "oncology",
    "paediatrics",
    "plastic_surgery",
    "vascular_surgery",
    "geriatrics",
];

/// Slots per referral of the same (specialty, kind): a little below one, so the
/// list does not clear and breaches have to be traded off.
const CAPACITY_RATIO: f64 = 0.93;

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast and well distributed.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is negligible for our n.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1).max(1) as u64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64 > 1.0 - p
    }
}

fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        date.checked_add_days(Days::new(days as u64))
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
    }
    .unwrap_or(date)
}

fn specialty_name(i: usize) -> String {
    match SPECIALTY_NAMES.get(i) {
        Some(name) => (*name).to_owned(),
        None => format!("specialty_{:02}", i + 1),
    }
}

/// The planning horizon: `weeks` whole weeks starting on the first Monday of 2026.
fn horizon(weeks: u32) -> Horizon {
    let start = NaiveDate::from_isoywd_opt(2026, 2, Weekday::Mon).unwrap_or(NaiveDate::MIN);
    let end = add_days(start, i64::from(weeks.max(1)) * 7 - 1);
    Horizon { start, end }
}

/// Generates an instance; see the module documentation for its shape.
pub fn generate(options: GenerateOptions) -> Instance {
    generate_with(options, Shape::default())
}

/// Generates an instance of the given [`Shape`]. Referral attributes, slots
/// and clinicians are those of [`generate`] for the same options; a share of
/// patients holding two referrals only re-draws who the patients are.
pub fn generate_with(options: GenerateOptions, shape: Shape) -> Instance {
    let mut rng = Rng(options.seed ^ 0x6d65_6473_6563_2d31);
    let specialties = options.specialties.max(1);
    let horizon = horizon(options.weeks);
    let horizon_days = (horizon.end - horizon.start).num_days() + 1;

    // Share of referrals per specialty varies (big and small departments).
    let shares: Vec<f64> = (0..specialties)
        .map(|_| 0.7 + rng.below(600) as f64 / 1000.0)
        .collect();
    let share_total: f64 = shares.iter().sum();

    let mut referrals: Vec<Referral> = Vec::with_capacity(options.referrals);
    let mut slots: Vec<Slot> = Vec::new();
    let mut patient_count = 0_usize;
    let mut assigned = 0_usize;

    for (spec, share) in shares.iter().enumerate() {
        let name = specialty_name(spec);
        let count = if spec + 1 == specialties {
            options.referrals - assigned
        } else {
            ((options.referrals as f64) * share / share_total).round() as usize
        }
        .min(options.referrals - assigned);
        assigned += count;

        // A clinician sees roughly 25 patients a week.
        let clinicians = (count as f64 / (25.0 * f64::from(options.weeks.max(1))) * 1.6)
            .ceil()
            .max(2.0) as usize;
        let clinician_ids: Vec<String> = (0..clinicians)
            .map(|c| format!("{name}-c{:02}", c + 1))
            .collect();

        let mut follow_ups = 0_usize;
        for _ in 0..count {
            // About one referral in twenty-five belongs to a patient already on the
            // list, in this specialty or an earlier one, so some patients hold
            // several referrals and some specialties are coupled.
            let patient_number = if patient_count > 0 && rng.chance(0.04) {
                1 + rng.below(patient_count as u64) as usize
            } else {
                patient_count += 1;
                patient_count
            };
            let patient = format!("p{patient_number:06}");
            let referral = new_referral(&mut rng, &horizon, &name, &clinician_ids, patient);
            if referral.kind == Kind::FollowUp {
                follow_ups += 1;
            }
            referrals.push(referral);
        }

        let new_slots = ((count - follow_ups) as f64 * CAPACITY_RATIO).round() as i64;
        let follow_up_slots = (follow_ups as f64 * CAPACITY_RATIO).round() as i64;
        make_slots(
            &mut rng,
            &horizon,
            horizon_days,
            &name,
            &clinician_ids,
            new_slots,
            follow_up_slots,
            &mut slots,
        );
    }

    if let Some(share) = shape.multi_referral_share {
        pair_patients(options.seed, share, &mut referrals);
    }
    for (i, referral) in referrals.iter_mut().enumerate() {
        referral.id = format!("r{:06}", i + 1);
    }
    for (i, slot) in slots.iter_mut().enumerate() {
        slot.id = format!("s{:06}", i + 1);
    }

    Instance {
        horizon,
        weights: WeightOverrides::default(),
        slots,
        referrals,
    }
}

/// Re-draws the patients of a list so that a share `share` of them hold two
/// referrals: referrals are shuffled (their own random stream, so the rest of
/// the instance is unchanged) and taken in that order, each patient taking the
/// next referral and, with probability `share`, the one after it too. The
/// second of a pair takes the first's priority and clock start (referred the
/// same day, for two problems), which is what makes such lists hard: both
/// want the same dates, and the relaxation puts them on the same day.
fn pair_patients(seed: u64, share: f64, referrals: &mut [Referral]) {
    let mut rng = Rng(seed ^ 0x7061_6972_6564_2d32);
    let mut order: Vec<usize> = (0..referrals.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let share = share.clamp(0.0, 1.0);
    let mut patients = 0_usize;
    let mut i = 0;
    while i < order.len() {
        patients += 1;
        let patient = format!("p{patients:06}");
        let take = if i + 1 < order.len() && rng.chance(share) {
            2
        } else {
            1
        };
        for &r in &order[i..i + take] {
            referrals[r].patient = patient.clone();
        }
        if take == 2 {
            // Referred together for two problems: same priority and clock
            // start, so both compete for the same early dates.
            let (first, second) = (order[i], order[i + 1]);
            referrals[second].priority = referrals[first].priority;
            referrals[second].clock_start = referrals[first].clock_start;
        }
        i += take;
    }
}

fn new_referral(
    rng: &mut Rng,
    horizon: &Horizon,
    specialty: &str,
    clinicians: &[String],
    patient: String,
) -> Referral {
    let horizon_days = (horizon.end - horizon.start).num_days() + 1;
    let roll = rng.below(100);
    let priority = match roll {
        0..=9 => Priority::TwoWeekWait,
        10..=29 => Priority::Urgent,
        _ => Priority::Routine,
    };
    let kind = if rng.chance(0.3) {
        Kind::FollowUp
    } else {
        Kind::New
    };
    // A quarter arrive during the horizon; the rest are the backlog. Routine
    // backlog reaches past 52 weeks for the long waiters.
    let clock_offset = if rng.chance(0.25) {
        rng.range(0, (horizon_days - 21).max(0))
    } else {
        match priority {
            Priority::TwoWeekWait => -rng.range(0, 10),
            Priority::Urgent => -rng.range(0, 40),
            Priority::Routine if rng.chance(0.1) => -rng.range(300, 450),
            Priority::Routine => -rng.range(0, 300),
        }
    };
    let clock_start = add_days(horizon.start, clock_offset);
    let earliest = rng
        .chance(0.1)
        .then(|| add_days(clock_start.max(horizon.start), rng.range(7, 28)));
    let unavailable = if rng.chance(0.2) {
        let from = add_days(horizon.start, rng.range(0, horizon_days - 1));
        vec![DateRange {
            from,
            to: add_days(from, rng.range(2, 13)),
        }]
    } else {
        Vec::new()
    };
    let pick = |rng: &mut Rng| clinicians[rng.below(clinicians.len() as u64) as usize].clone();
    let (required_clinician, preferred_clinician) = match kind {
        Kind::FollowUp => (Some(pick(rng)), None),
        Kind::New if rng.chance(0.15) => (None, Some(pick(rng))),
        Kind::New => (None, None),
    };
    Referral {
        id: String::new(),
        patient,
        specialty: specialty.to_owned(),
        priority,
        clock_start,
        kind,
        earliest,
        unavailable,
        required_clinician,
        preferred_clinician,
        due: None,
    }
}

/// Lays out clinics: each clinician works weekdays except one week of leave, and
/// the day's slots are spread over the clinicians at work.
#[allow(clippy::too_many_arguments)]
fn make_slots(
    rng: &mut Rng,
    horizon: &Horizon,
    horizon_days: i64,
    specialty: &str,
    clinicians: &[String],
    new_slots: i64,
    follow_up_slots: i64,
    slots: &mut Vec<Slot>,
) {
    let weeks = (horizon_days / 7).max(1);
    let leave_week: Vec<i64> = clinicians
        .iter()
        .map(|_| {
            if rng.chance(0.7) {
                rng.range(0, weeks - 1)
            } else {
                -1
            }
        })
        .collect();
    let mut clinician_days: Vec<(NaiveDate, usize)> = Vec::new();
    for offset in 0..horizon_days {
        let date = add_days(horizon.start, offset);
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            continue;
        }
        for (c, &leave) in leave_week.iter().enumerate() {
            if offset / 7 != leave {
                clinician_days.push((date, c));
            }
        }
    }
    if clinician_days.is_empty() {
        return;
    }
    for (kind, total) in [(Kind::New, new_slots), (Kind::FollowUp, follow_up_slots)] {
        // Spread `total` places evenly over the clinician-days, in clinic order.
        let n = clinician_days.len() as i64;
        let mut made = 0_i64;
        for (i, &(date, c)) in clinician_days.iter().enumerate() {
            let until = (total * (i as i64 + 1)) / n;
            let mut places = until - made;
            made = until;
            let mut minute = if kind == Kind::New { 9 * 60 } else { 14 * 60 };
            while places > 0 {
                // Occasionally a group session takes two patients at once.
                let capacity = if places >= 2 && rng.chance(0.03) {
                    2
                } else {
                    1
                };
                places -= capacity;
                slots.push(Slot {
                    id: String::new(),
                    specialty: specialty.to_owned(),
                    clinician: clinicians[c].clone(),
                    date,
                    start: Some(format!("{:02}:{:02}", minute / 60, minute % 60)),
                    kind,
                    capacity,
                });
                minute += 20;
            }
        }
    }
}
