//! Running the allocation model (the `medsec-scheduler` crate, model v1) on
//! an instance built from the tables: the horizon a run covers, the solve,
//! the model's cost terms of one placement, and the figures a proposal
//! records. Pure: the caller runs the solve off the async workers.
//!
//! Instance ids are the database ids (UUID text), so a solution maps back to
//! rows without a side table.

use std::fmt;

use chrono::NaiveDate;
use medsec_platform::ApiError;
use medsec_platform::request::Reader;
use medsec_proto::scheduling::v1 as pb;
use medsec_scheduler::evaluate::{self, Assignment};
use medsec_scheduler::model::Instance;
use medsec_scheduler::{InstanceError, Problem, Solution, SolveError, SolveOptions, Status};
use uuid::Uuid;

/// Longest horizon a run may cover, in days after its start.
pub const MAX_HORIZON_DAYS: i64 = 366;

medsec_platform::stored_enum!(
    /// Where a proposal is: stored, then committed as bookings.
    ProposalStatus, pb::ProposalStatus, {
        Proposed => "proposed", Proposed,
        Committed => "committed", Committed,
    }
);

/// The dates a run covers, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Horizon {
    /// One day (an offer of one slot).
    pub fn day(date: NaiveDate) -> Self {
        Self {
            start: date,
            end: date,
        }
    }

    /// Reads a required horizon from two request fields, each `(name,
    /// text)`: two dates, the end not before the start and at most
    /// [`MAX_HORIZON_DAYS`] after it.
    pub fn read(r: &mut Reader, start: (&str, &str), end: (&str, &str)) -> Option<Self> {
        let (start_field, end_field) = (start.0, end.0);
        let start = r.date(start_field, start.1);
        let end = r.date(end_field, end.1);
        let horizon = Self {
            start: start?,
            end: end?,
        };
        r.check(end_field, horizon.check(start_field))
    }

    fn check(self, start_field: &str) -> Result<Self, String> {
        if self.end < self.start {
            return Err(format!("must not be before {start_field}"));
        }
        if (self.end - self.start).num_days() > MAX_HORIZON_DAYS {
            return Err(format!(
                "must be at most {MAX_HORIZON_DAYS} days after the start"
            ));
        }
        Ok(self)
    }
}

/// What went wrong running the model on an instance built from the tables:
/// every case is a fault of ours (the tables hold only valid values).
#[derive(Debug)]
pub enum ModelError {
    Instance(InstanceError),
    Solve(SolveError),
    /// The solution does not fit its instance.
    Solution(String),
    /// An instance id that is not the UUID of the row it was made from.
    RowId(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Instance(error) => write!(f, "the instance is malformed: {error}"),
            Self::Solve(error) => write!(f, "the solve failed: {error}"),
            Self::Solution(why) => write!(f, "the solution does not fit: {why}"),
            Self::RowId(id) => write!(f, "instance id {id:?} is not a row id"),
        }
    }
}

impl std::error::Error for ModelError {}

impl From<InstanceError> for ModelError {
    fn from(error: InstanceError) -> Self {
        Self::Instance(error)
    }
}

impl From<SolveError> for ModelError {
    fn from(error: SolveError) -> Self {
        Self::Solve(error)
    }
}

impl From<ModelError> for ApiError {
    fn from(error: ModelError) -> Self {
        ApiError::internal(error)
    }
}

/// Parses an instance id back to the row id it was made from.
pub fn row_id(text: &str) -> Result<Uuid, ModelError> {
    Uuid::parse_str(text).map_err(|_| ModelError::RowId(text.to_owned()))
}

/// The model's cost terms of one referral in one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// Days from the clock start to the slot's date.
    pub wait_days: i32,
    /// Seen after the due date.
    pub breach: bool,
    /// A preferred clinician was named and this slot is another's.
    pub preference_missed: bool,
    /// The model's `cost(r, d, c)`.
    pub cost: i64,
}

impl Terms {
    /// The terms of referral `r` in slot `s` of `problem`.
    pub fn of(problem: &Problem, r: usize, s: usize) -> Self {
        let referral = &problem.referrals[r];
        let slot = &problem.slots[s];
        Self {
            wait_days: slot.day - referral.clock_start,
            breach: problem.breaches(r, Some(slot.day)),
            preference_missed: referral
                .preferred_clinician
                .is_some_and(|c| c != slot.clinician),
            cost: problem.cost(r, slot.day, slot.clinician),
        }
    }
}

/// A solved instance.
#[derive(Debug)]
pub struct Solved {
    pub problem: Problem,
    pub solution: Solution,
    /// The slot index each referral got, by referral index.
    pub assignment: Assignment,
}

/// Validates `instance` and solves it exactly (no time limit). Blocks for as
/// long as the solve takes.
pub fn solve(instance: &Instance, options: &SolveOptions) -> Result<Solved, ModelError> {
    let problem = medsec_scheduler::validate(instance)?;
    let started = std::time::Instant::now();
    let solved = medsec_scheduler::solve(&problem, options);
    medsec_platform::telemetry::metrics::optimiser_run(
        started.elapsed().as_secs_f64(),
        solved
            .as_ref()
            .map_or("error", |solution| solution.status.as_str()),
    );
    let solution = solved?;
    let assignment = evaluate::assignment_of(&problem, &solution).map_err(ModelError::Solution)?;
    Ok(Solved {
        problem,
        solution,
        assignment,
    })
}

/// One referral placed in one slot, in row ids, with its cost terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub referral_id: Uuid,
    pub patient_id: Uuid,
    pub slot_id: Uuid,
    pub specialty: String,
    pub slot_date: NaiveDate,
    pub clinician_id: Uuid,
    pub terms: Terms,
}

/// The figures of a run, as a proposal records them.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub optimal: bool,
    pub objective: i64,
    /// The greedy baseline's objective and breaches on the same instance.
    pub greedy_objective: i64,
    pub greedy_breaches: i32,
    pub referrals: i32,
    pub slots: i32,
    pub allocated: i32,
    pub unallocated: i32,
    pub breaches: i32,
    pub mean_wait_days: f64,
    pub max_wait_days: i32,
    pub solve_seconds: f64,
    /// Every referral placed, in referral id order.
    pub placements: Vec<Placement>,
}

/// A count as the tables store it (they never come near `i32::MAX`).
fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Solved {
    /// Whether the solve proved its solution optimal.
    pub fn optimal(&self) -> bool {
        self.solution.status == Status::Optimal
    }

    /// The placement of referral `r` in slot `s`.
    fn placement(&self, r: usize, s: usize) -> Result<Placement, ModelError> {
        let problem = &self.problem;
        let referral = &problem.referrals[r];
        let slot = &problem.slots[s];
        Ok(Placement {
            referral_id: row_id(&referral.id)?,
            patient_id: row_id(&problem.patients[referral.patient as usize])?,
            slot_id: row_id(&slot.id)?,
            specialty: problem.specialties[slot.specialty as usize].clone(),
            slot_date: medsec_scheduler::validate::date_of(slot.day),
            clinician_id: row_id(&problem.clinicians[slot.clinician as usize])?,
            terms: Terms::of(problem, r, s),
        })
    }

    /// Where the referral with row id `referral_id` was placed, if anywhere.
    pub fn placed(&self, referral_id: Uuid) -> Result<Option<Placement>, ModelError> {
        let id = referral_id.to_string();
        let r = self.problem.referrals.iter().position(|p| p.id == id);
        match r.and_then(|r| self.assignment[r].map(|s| (r, s))) {
            Some((r, s)) => self.placement(r, s).map(Some),
            None => Ok(None),
        }
    }

    /// The first referral placed (by referral id), if any: the one an
    /// instance of a single one-place slot gives it to.
    pub fn first_placed(&self) -> Result<Option<Placement>, ModelError> {
        let first = self
            .assignment
            .iter()
            .enumerate()
            .find_map(|(r, s)| s.map(|s| (r, s)));
        first.map(|(r, s)| self.placement(r, s)).transpose()
    }

    /// The run's figures and every placement, for a proposal.
    pub fn outcome(&self) -> Result<Outcome, ModelError> {
        let summary = evaluate::summarise(&self.problem, &self.assignment);
        let greedy = self.solution.stats.greedy.as_ref().unwrap_or(&summary);
        let placements = self
            .assignment
            .iter()
            .enumerate()
            .filter_map(|(r, s)| s.map(|s| self.placement(r, s)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Outcome {
            optimal: self.optimal(),
            objective: self.solution.objective,
            greedy_objective: greedy.objective,
            greedy_breaches: count(greedy.breaches),
            referrals: count(self.problem.referrals.len()),
            slots: count(self.problem.slots.len()),
            allocated: count(summary.allocated),
            unallocated: count(summary.unallocated),
            breaches: count(summary.breaches),
            mean_wait_days: summary.mean_wait_days,
            max_wait_days: i32::try_from(summary.max_wait_days).unwrap_or(i32::MAX),
            solve_seconds: self.solution.stats.solve_seconds,
            placements,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::tests::{date, violations};
    use medsec_scheduler::model::{self as m, Kind, Priority};

    /// An id that sorts by `n`.
    pub(crate) fn id(n: u128) -> Uuid {
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
    }

    pub(crate) fn slot(n: u128, clinician: u128, day: &str) -> m::Slot {
        m::Slot {
            id: id(n).to_string(),
            specialty: "cardiology".into(),
            clinician: id(clinician).to_string(),
            date: date(day),
            start: None,
            kind: Kind::New,
            capacity: 1,
        }
    }

    pub(crate) fn referral(n: u128, priority: Priority, clock_start: &str) -> m::Referral {
        m::Referral {
            id: id(n).to_string(),
            patient: id(n + 1000).to_string(),
            specialty: "cardiology".into(),
            priority,
            clock_start: date(clock_start),
            kind: Kind::New,
            earliest: None,
            unavailable: Vec::new(),
            required_clinician: None,
            preferred_clinician: None,
            due: None,
        }
    }

    pub(crate) fn instance(slots: Vec<m::Slot>, referrals: Vec<m::Referral>) -> Instance {
        Instance {
            horizon: m::Horizon {
                start: date("2026-06-01"),
                end: date("2026-06-30"),
            },
            weights: m::WeightOverrides::default(),
            slots,
            referrals,
        }
    }

    fn read(start: &str, end: &str) -> Result<Horizon, Vec<String>> {
        let mut r = Reader::new();
        let horizon = Horizon::read(&mut r, ("from", start), ("to", end));
        horizon.ok_or_else(|| violations(r))
    }

    #[test]
    fn a_horizon_is_two_dates_in_order_at_most_366_days_apart() {
        assert_eq!(
            read("2026-01-01", "2027-01-02"),
            Ok(Horizon {
                start: date("2026-01-01"),
                end: date("2027-01-02")
            })
        );
        assert_eq!(
            read("2026-06-30", "2026-06-01"),
            Err(vec!["to: must not be before from".to_owned()])
        );
        assert_eq!(
            read("2026-01-01", "2027-01-03"),
            Err(vec![
                "to: must be at most 366 days after the start".to_owned()
            ])
        );
        assert_eq!(
            read("2026-1-1", "").unwrap_err(),
            [
                "from: must be a date in the form YYYY-MM-DD",
                "to: is required"
            ]
        );
    }

    #[test]
    fn terms_follow_the_models_cost() {
        // Routine: P = 1, target 126 days, B = 20000; C = 20.
        let mut late = referral(1, Priority::Routine, "2026-01-05");
        late.preferred_clinician = Some(id(90).to_string());
        let instance = instance(
            vec![slot(10, 90, "2026-06-01"), slot(11, 91, "2026-06-29")],
            vec![late, referral(2, Priority::Urgent, "2026-05-25")],
        );
        let problem = medsec_scheduler::validate(&instance).unwrap();
        assert_eq!(
            Terms::of(&problem, 0, 0),
            Terms {
                wait_days: 147,
                breach: true,
                preference_missed: false,
                cost: 147 * 147 + 20_000,
            }
        );
        assert_eq!(
            Terms::of(&problem, 0, 1),
            Terms {
                wait_days: 175,
                breach: true,
                preference_missed: true,
                cost: 175 * 175 + 20_000 + 20,
            }
        );
        // Urgent: P = 5, due 28 days after 25 May (22 June).
        assert_eq!(
            Terms::of(&problem, 1, 0),
            Terms {
                wait_days: 7,
                breach: false,
                preference_missed: false,
                cost: 5 * 7 * 7,
            }
        );
        assert!(Terms::of(&problem, 1, 1).breach);
    }

    #[test]
    fn a_solve_maps_back_to_rows_with_the_figures_of_a_proposal() {
        let instance = instance(
            vec![slot(10, 90, "2026-06-01"), slot(11, 90, "2026-06-29")],
            vec![
                referral(1, Priority::Routine, "2026-01-05"),
                referral(2, Priority::Routine, "2026-04-01"),
                referral(3, Priority::TwoWeekWait, "2026-05-25"),
            ],
        );
        let solved = solve(&instance, &SolveOptions::default()).unwrap();
        assert!(solved.optimal());
        let outcome = solved.outcome().unwrap();
        assert_eq!((outcome.referrals, outcome.slots), (3, 2));
        assert_eq!((outcome.allocated, outcome.unallocated), (2, 1));
        assert!(outcome.objective <= outcome.greedy_objective);
        assert_eq!(outcome.objective, solved.solution.objective);
        let placed: Vec<_> = outcome
            .placements
            .iter()
            .map(|p| (p.referral_id, p.slot_id))
            .collect();
        // The two-week wait takes the early slot; the longest routine wait
        // the late one.
        assert_eq!(placed, [(id(1), id(11)), (id(3), id(10))]);
        let first = &outcome.placements[0];
        assert_eq!(first.patient_id, id(1001));
        assert_eq!(first.clinician_id, id(90));
        assert_eq!(first.slot_date, date("2026-06-29"));
        assert_eq!(first.terms.wait_days, 175);
        assert_eq!(outcome.max_wait_days, 175);
        assert_eq!(solved.placed(id(3)).unwrap().unwrap().slot_id, id(10));
        assert_eq!(solved.placed(id(2)).unwrap(), None);
        assert_eq!(solved.placed(id(99)).unwrap(), None);
        assert_eq!(solved.first_placed().unwrap().unwrap().referral_id, id(1));
    }

    #[test]
    fn an_instance_id_that_is_not_a_row_id_is_our_fault() {
        let mut bad = instance(vec![slot(10, 90, "2026-06-01")], Vec::new());
        bad.referrals
            .push(referral(1, Priority::Routine, "2026-05-01"));
        bad.referrals[0].id = "r1".into();
        let solved = solve(&bad, &SolveOptions::default()).unwrap();
        assert!(matches!(solved.outcome(), Err(ModelError::RowId(id)) if id == "r1"));
        let error = ApiError::from(solved.first_placed().unwrap_err());
        assert!(matches!(error, ApiError::Internal(_)));
    }
}
