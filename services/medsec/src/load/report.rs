//! The report of a run, as JSON (serde) and as Markdown: per workload its
//! throughput and step latencies, per RPC its answers by code and latency
//! percentiles, the ceiling and each workload's fraction of it, the machine,
//! the commit and the server's own view when Prometheus answered.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::seed::{SeedFigures, SeedSize};
use super::stats::{DROPPED, STEP, Series, Snapshot};

/// What a run measured, and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `medsec load` and its version.
    pub tool: String,
    pub run_id: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    pub machine: Machine,
    /// The commit of the tree the generator was built from, when known.
    pub commit: Option<String>,
    /// The server's database (`sqlite`, `postgres`), when known.
    pub database: Option<String>,
    pub options: OptionsReport,
    /// The clinic seeded before the load; `None` for the ceiling alone.
    pub seed: Option<SeedFigures>,
    pub workloads: Vec<PhaseReport>,
    /// The stack's own ceiling on this machine, measured in the same run.
    pub ceiling: Option<CeilingReport>,
    pub server_metrics: ServerMetrics,
}

/// The machine the generator ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    /// `uname -sr`, when it answered.
    pub os: Option<String>,
}

/// The options of the run, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionsReport {
    pub addr: String,
    /// `concurrency N` (closed loop) or `rate R/s` (open loop).
    pub pace: String,
    pub concurrency: Option<usize>,
    pub rate_per_second: Option<f64>,
    pub max_in_flight: Option<usize>,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub connections: usize,
    pub timeout_secs: f64,
    pub ceiling: bool,
    pub seed: SeedSize,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    fn of(series: &Series) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let h = &series.latencies;
        Self {
            p50_ms: ms(series.quantile(0.5)),
            p90_ms: ms(series.quantile(0.9)),
            p99_ms: ms(series.quantile(0.99)),
            p999_ms: ms(series.quantile(0.999)),
            max_ms: if h.is_empty() {
                0.0
            } else {
                h.max() as f64 / 1000.0
            },
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        }
    }
}

/// One RPC's figures in a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcReport {
    /// The RPC's method name, e.g. `BookAppointment`.
    pub name: String,
    /// Every answer.
    pub count: u64,
    pub ok: u64,
    /// Answers per second of the measured window.
    pub per_second: f64,
    /// Of answers that were not errors (ok and contention).
    pub latency: Latency,
    /// Expected answers under concurrency, by gRPC code name.
    pub contention: BTreeMap<String, u64>,
    /// Errors, by gRPC code name.
    pub errors: BTreeMap<String, u64>,
}

impl RpcReport {
    fn of(name: &str, series: &Series, seconds: f64) -> Self {
        Self {
            name: name.to_owned(),
            count: series.count(),
            ok: series.ok,
            per_second: per_second(series.count(), seconds),
            latency: Latency::of(series),
            contention: series.contention.clone(),
            errors: series.errors.clone(),
        }
    }

    /// Errors of every code.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One workload's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// The workload's name, e.g. `booking`.
    pub workload: String,
    /// The measured window (the warm-up excluded).
    pub seconds: f64,
    /// Whole steps: a step is one member of staff's action, of one or more
    /// RPCs. Its `count` includes dropped steps, its `per_second` does not.
    pub steps: RpcReport,
    /// Scheduled steps the open loop's in-flight cap dropped (counted as
    /// step errors `DROPPED` too).
    pub dropped: u64,
    /// Every RPC together.
    pub rpcs: u64,
    pub rpc_errors: u64,
    pub rpcs_per_second: f64,
    /// Each RPC, by name.
    pub by_rpc: Vec<RpcReport>,
    /// RPCs per second as a fraction of the ceiling's `Ping`s per second.
    pub fraction_of_ping: Option<f64>,
    /// RPCs per second as a fraction of the ceiling's `Insert`s per second.
    pub fraction_of_insert: Option<f64>,
}

impl PhaseReport {
    pub(crate) fn of(workload: &str, snapshot: &Snapshot, window: Duration) -> Self {
        let seconds = window.as_secs_f64();
        let rpcs: u64 = snapshot.rpcs.values().map(Series::count).sum();
        let dropped = snapshot.steps.errors.get(DROPPED).copied().unwrap_or(0);
        let mut steps = RpcReport::of(STEP, &snapshot.steps, seconds);
        steps.per_second = per_second(steps.count.saturating_sub(dropped), seconds);
        Self {
            workload: workload.to_owned(),
            seconds,
            steps,
            dropped,
            rpcs,
            rpc_errors: snapshot.rpcs.values().map(Series::error_count).sum(),
            rpcs_per_second: per_second(rpcs, seconds),
            by_rpc: snapshot
                .rpcs
                .iter()
                .map(|(name, series)| RpcReport::of(name, series, seconds))
                .collect(),
            fraction_of_ping: None,
            fraction_of_insert: None,
        }
    }

    /// The RPC named `name`, if this workload issued it.
    pub fn rpc(&self, name: &str) -> Option<&RpcReport> {
        self.by_rpc.iter().find(|rpc| rpc.name == name)
    }
}

/// The ceiling: the same shell answering at once, and writing one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CeilingReport {
    pub ping: PhaseReport,
    pub insert: PhaseReport,
}

/// The server's own `rpc.server.call.duration` p99 by method, from
/// Prometheus, when it was asked and answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerMetrics {
    /// The Prometheus asked, if any.
    pub prometheus: Option<String>,
    pub reachable: bool,
    /// Why there are no figures, when there are none.
    pub note: Option<String>,
    /// p99 over the last minute, seconds, by `rpc_method`.
    pub p99_seconds_by_method: BTreeMap<String, f64>,
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// `value` as a fraction of `of`, when `of` is not zero.
pub(crate) fn fraction(value: f64, of: f64) -> Option<f64> {
    (of > 0.0).then(|| value / of)
}

impl Report {
    /// Writes the report as `<path>.json` and `<path>.md`; returns both paths.
    pub fn write(&self, path: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        let with = |extension: &str| {
            let mut file = path.as_os_str().to_owned();
            file.push(extension);
            PathBuf::from(file)
        };
        let (json, markdown) = (with(".json"), with(".md"));
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&json, text + "\n")
            .with_context(|| format!("cannot write {}", json.display()))?;
        std::fs::write(&markdown, self.to_markdown())
            .with_context(|| format!("cannot write {}", markdown.display()))?;
        Ok((json, markdown))
    }

    /// The report as Markdown: a summary table, then each workload's RPCs.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_markdown(&mut md);
        md
    }

    fn write_markdown(&self, md: &mut String) -> std::fmt::Result {
        writeln!(md, "# {} — run {}\n", self.tool, self.run_id)?;
        writeln!(
            md,
            "{} against {} ({}), {}; commit {}; {} cores{}.\n",
            self.started_at,
            self.options.addr,
            self.database.as_deref().unwrap_or("database unknown"),
            self.options.pace,
            self.commit.as_deref().unwrap_or("unknown"),
            self.machine.cores,
            self.machine
                .os
                .as_deref()
                .map(|os| format!(", {os}"))
                .unwrap_or_default(),
        )?;
        writeln!(
            md,
            "Each workload ran {:.1} s after {:.1} s of warm-up over {} connection(s); \
             latencies are of answers (contention included, errors not){}.\n",
            self.options.duration_secs,
            self.options.warmup_secs,
            self.options.connections,
            if self.options.rate_per_second.is_some() {
                ", each step timed from its scheduled start"
            } else {
                ""
            },
        )?;
        if let Some(seed) = &self.seed {
            writeln!(
                md,
                "Seeded in {:.1} s: {} clinicians, {} slots, {} patients, {} referrals, \
                 {} prices.\n",
                seed.seconds,
                seed.clinicians,
                seed.slots,
                seed.patients,
                seed.referrals,
                seed.price_items
            )?;
        }

        writeln!(md, "## Summary\n")?;
        writeln!(
            md,
            "| workload | steps/s | RPCs/s | step p50 ms | step p99 ms | errors | of ping | of insert |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        let ceiling = self.ceiling.iter().flat_map(|c| [&c.ping, &c.insert]);
        for phase in ceiling.chain(&self.workloads) {
            writeln!(
                md,
                "| {} | {:.1} | {:.1} | {:.2} | {:.2} | {} | {} | {} |",
                phase.workload,
                phase.steps.per_second,
                phase.rpcs_per_second,
                phase.steps.latency.p50_ms,
                phase.steps.latency.p99_ms,
                phase.rpc_errors + phase.dropped,
                percent(phase.fraction_of_ping),
                percent(phase.fraction_of_insert),
            )?;
        }
        writeln!(md)?;

        let ceiling = self.ceiling.iter().flat_map(|c| [&c.ping, &c.insert]);
        for phase in self.workloads.iter().chain(ceiling) {
            writeln!(md, "## {}\n", phase.workload)?;
            writeln!(
                md,
                "| rpc | count | per s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | contention | errors |"
            )?;
            writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|")?;
            for rpc in phase.by_rpc.iter().chain([&phase.steps]) {
                let l = &rpc.latency;
                writeln!(
                    md,
                    "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
                    rpc.name,
                    rpc.count,
                    rpc.per_second,
                    l.p50_ms,
                    l.p90_ms,
                    l.p99_ms,
                    l.p999_ms,
                    l.max_ms,
                    codes(&rpc.contention),
                    codes(&rpc.errors),
                )?;
            }
            writeln!(md)?;
        }

        writeln!(md, "## Server metrics\n")?;
        match (
            &self.server_metrics.prometheus,
            self.server_metrics.reachable,
        ) {
            (None, _) => writeln!(md, "No Prometheus was named (`--prometheus URL`).")?,
            (Some(url), false) => writeln!(
                md,
                "Prometheus at {url}: {}.",
                self.server_metrics
                    .note
                    .as_deref()
                    .unwrap_or("not reachable")
            )?,
            (Some(url), true) => {
                writeln!(
                    md,
                    "`rpc.server.call.duration` p99 over the last minute, from {url}:\n"
                )?;
                writeln!(md, "| method | p99 ms |")?;
                writeln!(md, "|---|---:|")?;
                for (method, seconds) in &self.server_metrics.p99_seconds_by_method {
                    writeln!(md, "| {method} | {:.2} |", seconds * 1000.0)?;
                }
                if let Some(note) = &self.server_metrics.note {
                    writeln!(md, "\n{note}")?;
                }
            }
        }
        Ok(())
    }
}

fn percent(fraction: Option<f64>) -> String {
    fraction
        .map(|f| format!("{:.1}%", f * 100.0))
        .unwrap_or_else(|| "–".to_owned())
}

fn codes(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    counts
        .iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
