//! Wire types of allocation model v1: the instance and solution JSON documents.
//!
//! These types mirror `allocation-model.md` field for field. They are deliberately
//! dumb: parsing an item only checks its shape and field types. Everything that
//! needs the whole instance (unique ids, `from <= to`, capacities) is checked by
//! [`mod@crate::validate`], which turns an [`Instance`] into a solver-ready
//! [`crate::validate::Problem`].

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::InstanceError;

/// Referral priority, in decreasing clinical urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    TwoWeekWait,
    Urgent,
    Routine,
}

impl Priority {
    /// All priorities, most urgent first (the greedy baseline's order).
    pub const ALL: [Priority; 3] = [Priority::TwoWeekWait, Priority::Urgent, Priority::Routine];

    pub(crate) fn index(self) -> usize {
        match self {
            Priority::TwoWeekWait => 0,
            Priority::Urgent => 1,
            Priority::Routine => 2,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Priority::TwoWeekWait => "two_week_wait",
            Priority::Urgent => "urgent",
            Priority::Routine => "routine",
        })
    }
}

/// Appointment kind; a referral only fits a slot of the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    New,
    FollowUp,
}

/// Planning horizon, both ends inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizon {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// One value per priority. Absent entries keep their default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_week_wait: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routine: Option<i64>,
}

impl PriorityTable {
    fn get(&self, priority: Priority) -> Option<i64> {
        match priority {
            Priority::TwoWeekWait => self.two_week_wait,
            Priority::Urgent => self.urgent,
            Priority::Routine => self.routine,
        }
    }

    fn is_empty(&self) -> bool {
        self.two_week_wait.is_none() && self.urgent.is_none() && self.routine.is_none()
    }
}

/// Weight overrides as written in the instance; see [`Weights`] for the values in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightOverrides {
    #[serde(default, skip_serializing_if = "PriorityTable::is_empty")]
    pub target_days: PriorityTable,
    #[serde(default, skip_serializing_if = "PriorityTable::is_empty")]
    pub priority: PriorityTable,
    #[serde(default, skip_serializing_if = "PriorityTable::is_empty")]
    pub breach: PriorityTable,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unallocated: Option<i64>,
}

impl WeightOverrides {
    fn is_empty(&self) -> bool {
        self == &WeightOverrides::default()
    }
}

/// The weights in force: the documented defaults with the instance's overrides applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    /// Indexed by priority: two-week wait, urgent, routine (as are `priority`
    /// and `breach`).
    pub target_days: [i64; 3],
    pub priority: [i64; 3],
    pub breach: [i64; 3],
    pub preference: i64,
    pub unallocated: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            target_days: [14, 28, 126],
            priority: [20, 5, 1],
            breach: [200_000, 50_000, 20_000],
            preference: 20,
            unallocated: 1000,
        }
    }
}

impl Weights {
    /// Applies a partial override table on top of the defaults.
    pub fn with_overrides(overrides: &WeightOverrides) -> Weights {
        let mut weights = Weights::default();
        for priority in Priority::ALL {
            let i = priority.index();
            if let Some(v) = overrides.target_days.get(priority) {
                weights.target_days[i] = v;
            }
            if let Some(v) = overrides.priority.get(priority) {
                weights.priority[i] = v;
            }
            if let Some(v) = overrides.breach.get(priority) {
                weights.breach[i] = v;
            }
        }
        if let Some(v) = overrides.preference {
            weights.preference = v;
        }
        if let Some(v) = overrides.unallocated {
            weights.unallocated = v;
        }
        weights
    }
}

fn default_capacity() -> i64 {
    1
}

/// A clinic slot. `start` is informational only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub id: String,
    pub specialty: String,
    pub clinician: String,
    pub date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    pub kind: Kind,
    /// Signed so that a capacity below 1 parses and is rejected by validation by name.
    #[serde(default = "default_capacity")]
    pub capacity: i64,
}

/// An inclusive range of dates on which a patient cannot attend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A referral waiting for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub id: String,
    pub patient: String,
    pub specialty: String,
    pub priority: Priority,
    pub clock_start: NaiveDate,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<DateRange>,
    #[serde(default)]
    pub required_clinician: Option<String>,
    #[serde(default)]
    pub preferred_clinician: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
}

impl Referral {
    /// A referral of `kind` with only the fields every referral has: no
    /// earliest date, unavailable days, clinician asked for or due date.
    pub fn new(
        id: String,
        patient: String,
        specialty: String,
        priority: Priority,
        clock_start: NaiveDate,
        kind: Kind,
    ) -> Referral {
        Referral {
            id,
            patient,
            specialty,
            priority,
            clock_start,
            kind,
            earliest: None,
            unavailable: Vec::new(),
            required_clinician: None,
            preferred_clinician: None,
            due: None,
        }
    }
}

/// A problem instance exactly as the JSON document describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub horizon: Horizon,
    #[serde(default, skip_serializing_if = "WeightOverrides::is_empty")]
    pub weights: WeightOverrides,
    pub slots: Vec<Slot>,
    pub referrals: Vec<Referral>,
}

/// Top-level shape, with the item lists left raw so each item can be parsed on its
/// own and a parse error can name the item it is in.
#[derive(Deserialize)]
struct RawInstance {
    horizon: serde_json::Value,
    #[serde(default)]
    weights: Option<serde_json::Value>,
    slots: Vec<serde_json::Value>,
    referrals: Vec<serde_json::Value>,
}

/// Describes a raw list item for error messages: its id if it has a string one.
fn item_name(list: &'static str, index: usize, value: &serde_json::Value) -> String {
    let singular = list.trim_end_matches('s');
    match value.get("id").and_then(serde_json::Value::as_str) {
        Some(id) => format!("{singular} {id:?} ({list}[{index}])"),
        None => format!("{singular} {list}[{index}]"),
    }
}

fn parse_items<T: serde::de::DeserializeOwned>(
    list: &'static str,
    raw: Vec<serde_json::Value>,
) -> Result<Vec<T>, InstanceError> {
    raw.into_iter()
        .enumerate()
        .map(|(index, value)| {
            let item = item_name(list, index, &value);
            serde_json::from_value(value).map_err(|source| InstanceError::Parse {
                item,
                message: source.to_string(),
            })
        })
        .collect()
}

impl Instance {
    /// Parses an instance document. Errors name the item that could not be parsed;
    /// call [`crate::validate::validate`] for the checks that span items.
    pub fn from_json(text: &str) -> Result<Instance, InstanceError> {
        // Fast path: one typed pass. Only a document that fails it is parsed
        // again item by item, to name the offending item in the error.
        if let Ok(instance) = serde_json::from_str::<Instance>(text) {
            return Ok(instance);
        }
        let raw: RawInstance = serde_json::from_str(text).map_err(|e| InstanceError::Parse {
            item: "instance".to_owned(),
            message: e.to_string(),
        })?;
        let horizon = serde_json::from_value(raw.horizon).map_err(|e| InstanceError::Parse {
            item: "horizon".to_owned(),
            message: e.to_string(),
        })?;
        let weights = match raw.weights {
            Some(value) => serde_json::from_value(value).map_err(|e| InstanceError::Parse {
                item: "weights".to_owned(),
                message: e.to_string(),
            })?,
            None => WeightOverrides::default(),
        };
        Ok(Instance {
            horizon,
            weights,
            slots: parse_items("slots", raw.slots)?,
            referrals: parse_items("referrals", raw.referrals)?,
        })
    }
}

/// Whether optimality was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The objective equals a proven lower bound.
    Optimal,
    /// A valid allocation whose objective may exceed the optimum by up to `stats.gap`.
    Feasible,
}

impl Status {
    /// Its spelling in JSON, traces and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optimal => "optimal",
            Self::Feasible => "feasible",
        }
    }
}

/// One referral placed in one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub referral: String,
    pub slot: String,
}

/// Quality figures of one allocation, for comparing the solver with the greedy baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub objective: i64,
    /// Referrals seen after their due date, counting unallocated referrals whose
    /// notional date (the day after the horizon) is past due, as the objective does.
    pub breaches: usize,
    pub allocated: usize,
    pub unallocated: usize,
    /// Over allocated referrals, in days from clock start to appointment.
    pub mean_wait_days: f64,
    pub max_wait_days: i64,
}

/// Run statistics; everything here may differ between runs of the same instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub solve_seconds: f64,
    pub referrals: usize,
    pub slots: usize,
    /// Proven lower bound on the optimum (equals `objective` when optimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<i64>,
    /// Referral-slot pairs satisfying every feasibility rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feasible_pairs: Option<u64>,
    /// How the solver worked: sub-problems, relaxation solves, clashes,
    /// branch-and-bound nodes or MIP solves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<SolverStats>,
    /// This solution's figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The greedy baseline's figures on the same instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greedy: Option<Summary>,
}

/// Work done by the exact solver.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SolverStats {
    /// Wall time from the start through stage 1 (greedy, network, relaxations).
    pub stage1_seconds: f64,
    /// Wall time of stage 2 (patient-per-day clashes).
    pub stage2_seconds: f64,
    /// Independent (specialty, kind) flow problems.
    pub subproblems: usize,
    /// Referral classes (referrals with identical attributes) over all sub-problems.
    pub referral_classes: usize,
    /// Slot groups (same specialty, kind, date and clinician).
    pub slot_groups: usize,
    /// Relaxation solves (min-cost flows, or LPs with `--lp`) over all
    /// sub-problems, including column-generation rounds.
    pub lp_solves: usize,
    /// Most arcs (LP columns with `--lp`) offered to one sub-problem's relaxation.
    pub max_lp_columns: usize,
    /// Patient-day clashes in the stage-1 relaxation that stage 2 resolved.
    pub patient_day_conflicts: usize,
    /// MIP solves (LP engine; zero when the relaxation already respected every
    /// patient-day rule).
    pub mip_solves: usize,
    /// Branch-and-bound nodes expanded (flow engine).
    #[serde(default)]
    pub branch_nodes: usize,
    /// Warm-started flow re-solves in the branch and bound (flow engine).
    #[serde(default)]
    pub flow_resolves: usize,
    /// HiGHS LP solves with every patient-day row (flow engine, clash-dense
    /// components; column-generation rounds included).
    #[serde(default)]
    pub clash_lp_solves: usize,
    /// True when a limit stopped the search with an allocation dearer than
    /// the greedy baseline, so the greedy allocation was returned instead.
    #[serde(default)]
    pub greedy_kept: bool,
    /// Sub-problems whose relaxation the time limit stopped short of its
    /// optimum (each then allocated by its cut-off flow or by the greedy
    /// baseline, whichever is cheaper there); with any, stage 2 is skipped.
    #[serde(default)]
    pub relaxations_cut_short: usize,
}

/// A solution document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    pub status: Status,
    pub objective: i64,
    pub allocations: Vec<Allocation>,
    pub unallocated: Vec<String>,
    pub stats: Stats,
}

impl Solution {
    /// The solution as pretty JSON; infallible for these types.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail; a NaN in
        // `stats` would become null rather than an error.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
