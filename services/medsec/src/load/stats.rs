//! What a load phase measured: per RPC and per step, an HDR histogram of
//! latencies (microseconds) and the answers counted by gRPC code.
//!
//! Answers are of three kinds: `ok`; *contention*, the answers a busy clinic
//! gives by design (a slot taken since it was listed, a concurrent change
//! that won a race), counted apart and kept in the latency figures; and
//! *errors*, counted by code and kept out of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tonic::Code;

/// The longest latency a histogram holds (10 minutes); longer is clamped.
const MAX_MICROS: u64 = 600_000_000;

/// The name of the whole step in a phase's table.
pub(crate) const STEP: &str = "step";

/// The code name counted when the open loop's in-flight cap drops a
/// scheduled step instead of sending it.
pub(crate) const DROPPED: &str = "DROPPED";

/// An empty histogram of latencies in microseconds, 1 µs to 10 minutes at
/// three significant figures.
pub(crate) fn histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3)
}

/// How an answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// An answer the workload expects under concurrency.
    Contention(Code),
    Error(Code),
}

/// One RPC's (or the step's) figures.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) latencies: Histogram<u64>,
    pub(crate) ok: u64,
    pub(crate) contention: BTreeMap<String, u64>,
    pub(crate) errors: BTreeMap<String, u64>,
}

impl Series {
    /// No answers yet; `empty` is the empty histogram to start from.
    pub(crate) fn new(empty: &Histogram<u64>) -> Self {
        Self {
            latencies: empty.clone(),
            ok: 0,
            contention: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, latency: Duration, outcome: Outcome) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.latencies.saturating_record(micros.max(1));
            }
            Outcome::Contention(code) => {
                *self
                    .contention
                    .entry(code_name(code).to_owned())
                    .or_default() += 1;
                self.latencies.saturating_record(micros.max(1));
            }
            Outcome::Error(code) => {
                *self.errors.entry(code_name(code).to_owned()).or_default() += 1;
            }
        }
    }

    /// Every answer (and drop) counted.
    pub(crate) fn count(&self) -> u64 {
        self.ok + self.contention.values().sum::<u64>() + self.errors.values().sum::<u64>()
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The latency at `quantile` (0 to 1), or 0 with none recorded.
    pub(crate) fn quantile(&self, quantile: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latencies.value_at_quantile(quantile))
    }
}

/// A phase's figures so far: each RPC by name, the whole step, and every
/// RPC together (for the live line).
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) rpcs: BTreeMap<&'static str, Series>,
    pub(crate) steps: Series,
    pub(crate) all: Series,
    empty: Histogram<u64>,
}

/// Where a phase's workers record, shared by them; a call that started
/// before `measure_from` (the warm-up) is not recorded.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    inner: Arc<Mutex<Snapshot>>,
    measure_from: Instant,
}

impl Recorder {
    pub(crate) fn new(measure_from: Instant) -> Result<Self, hdrhistogram::CreationError> {
        let empty = histogram()?;
        let snapshot = Snapshot {
            rpcs: BTreeMap::new(),
            steps: Series::new(&empty),
            all: Series::new(&empty),
            empty,
        };
        Ok(Self {
            inner: Arc::new(Mutex::new(snapshot)),
            measure_from,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Snapshot) -> T) -> T {
        // A worker that panicked mid-record leaves counts, not broken
        // invariants: keep recording.
        let mut snapshot = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut snapshot)
    }

    /// One RPC's answer, from a call begun at `start`.
    pub(crate) fn rpc(&self, name: &'static str, start: Instant, outcome: Outcome) {
        if start < self.measure_from {
            return;
        }
        let latency = start.elapsed();
        self.with(|s| {
            let empty = &s.empty;
            s.rpcs
                .entry(name)
                .or_insert_with(|| Series::new(empty))
                .record(latency, outcome);
            s.all.record(latency, outcome);
        });
    }

    /// One whole step, scheduled (or begun) at `start`.
    pub(crate) fn step(&self, start: Instant, outcome: Outcome) {
        if start < self.measure_from {
            return;
        }
        let latency = start.elapsed();
        self.with(|s| s.steps.record(latency, outcome));
    }

    /// A scheduled step the in-flight cap dropped: an error of the step.
    pub(crate) fn dropped(&self, scheduled: Instant) {
        if scheduled < self.measure_from {
            return;
        }
        self.with(|s| {
            *s.steps.errors.entry(DROPPED.to_owned()).or_default() += 1;
        });
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        self.with(|s| s.clone())
    }

    /// The live line's figures: answers, errors, p50 and p99 of every RPC.
    pub(crate) fn live(&self) -> (u64, u64, Duration, Duration) {
        self.with(|s| {
            (
                s.all.count(),
                s.all.error_count() + s.steps.errors.get(DROPPED).copied().unwrap_or(0),
                s.all.quantile(0.5),
                s.all.quantile(0.99),
            )
        })
    }
}

/// The canonical gRPC name of `code`, as the report counts it.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn contention_is_timed_and_errors_are_not() {
        let mut series = Series::new(&histogram().unwrap());
        series.record(Duration::from_millis(2), Outcome::Ok);
        series.record(
            Duration::from_millis(4),
            Outcome::Contention(Code::FailedPrecondition),
        );
        series.record(Duration::from_secs(9), Outcome::Error(Code::Unavailable));
        assert_eq!(series.count(), 3);
        assert_eq!(series.error_count(), 1);
        assert_eq!(series.latencies.len(), 2);
        assert_eq!(series.contention["FAILED_PRECONDITION"], 1);
        assert!(series.quantile(1.0) < Duration::from_millis(5));
    }

    #[tokio::test]
    async fn the_warm_up_is_not_recorded() {
        let start = Instant::now();
        let recorder = Recorder::new(start + Duration::from_millis(1)).unwrap();
        recorder.rpc("Ping", start, Outcome::Ok);
        recorder.rpc("Ping", start + Duration::from_millis(1), Outcome::Ok);
        assert_eq!(recorder.snapshot().rpcs["Ping"].count(), 1);
    }
}
