//! Errors of the scheduler library.

/// Why an instance was rejected. Each variant names the offending item, so a
/// caller can point a user at it; nothing is solved when any of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    #[error("{item}: cannot parse: {message}")]
    Parse { item: String, message: String },
    #[error("{item}: duplicate id")]
    DuplicateId { item: String },
    #[error("{item}: capacity {capacity} is below 1")]
    Capacity { item: String, capacity: i64 },
    #[error("{item}: unavailable range from {from} is after to {to}")]
    RangeOrder {
        item: String,
        from: String,
        to: String,
    },
    #[error("horizon: start {start} is after end {end}")]
    Horizon { start: String, end: String },
    #[error("{item}: {message}")]
    Invalid { item: String, message: String },
}

/// Why a solve failed after the instance was accepted.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error("lp solver failed on {subproblem}: {message}")]
    Lp { subproblem: String, message: String },
    #[error("solution does not match the instance: {0}")]
    Solution(String),
}
