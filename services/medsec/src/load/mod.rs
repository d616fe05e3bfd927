//! `medsec load`: a gRPC load generator against the suite's own APIs.
//!
//! It seeds a clinic through the API (`seed`: clinicians, weeks of slots,
//! patients, referrals, a price list), then drives each named workload
//! (`workload`) for a duration, either closed loop (`N` workers, each
//! sending its next step when the last answered) or open loop (steps
//! *scheduled* at a fixed rate whatever the answers, each timed from its
//! scheduled start, so a slow server cannot hide its latency by slowing the
//! generator down: no coordinated omission). With the ceiling it also drives
//! `CeilingService` (`Ping`, and `Insert` of one row) the same way, and
//! reports each workload as a fraction of what the stack itself does on this
//! machine in this run.
//!
//! `mixed` is a secretary's day in proportion, over every 20 steps: 40%
//! reads (diaries, patient look-ups), 25% bookings, 15% registrations, 15%
//! billing (charge, invoice, payment) and 5% cancellations. Answers a busy
//! clinic gives by design (a slot taken since it was listed, `ABORTED`) are
//! counted as contention, apart from errors.
//!
//! Calls authenticate like any client's: a bearer token (every staff role)
//! and `x-medsec-purpose: direct_care`.
//!
//! - `stats`: per-RPC HDR histograms and answers by code
//! - `report`: the JSON and Markdown report
//! - `prometheus`: the server's own p99s, when a Prometheus is named

mod client;
mod prometheus;
mod report;
mod rng;
mod seed;
mod stats;
mod workload;
mod world;

use std::io::IsTerminal as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::Code;

pub use client::{SUBJECT, dev_token};
pub use report::{
    CeilingReport, Latency, Machine, OptionsReport, PhaseReport, Report, RpcReport, ServerMetrics,
};
pub use seed::{SeedFigures, SeedSize};

use client::{Clients, Credentials};
use rng::Rng;
use seed::NhsNumbers;
use stats::Recorder;
use world::World;

/// What the generated load does (see the `workload` module for each step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Find a free slot, book it; sometimes cancel or reschedule.
    Booking,
    /// Register a patient, read their summary, list patients by prefix.
    Records,
    /// Charge, invoice, issue, pay.
    Billing,
    /// A secretary's day in proportion.
    Mixed,
    /// Read a clinician's diary for a week.
    DiaryRead,
    /// The ceiling: an RPC that does nothing.
    Ping,
    /// The ceiling: an RPC that inserts one row.
    Insert,
}

impl Workload {
    /// The workloads a clinic is seeded for (all but the ceiling's).
    pub const CLINIC: [Self; 5] = [
        Self::Booking,
        Self::Records,
        Self::Billing,
        Self::Mixed,
        Self::DiaryRead,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Booking => "booking",
            Self::Records => "records",
            Self::Billing => "billing",
            Self::Mixed => "mixed",
            Self::DiaryRead => "diary-read",
            Self::Ping => "ping",
            Self::Insert => "insert",
        }
    }

    fn needs_clinic(self) -> bool {
        !matches!(self, Self::Ping | Self::Insert)
    }
}

/// How steps are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Closed loop: this many workers, each sending its next step when its
    /// last one answered.
    Concurrency(usize),
    /// Open loop: a step scheduled every 1/`per_second` s whatever the
    /// answers; a step due while `max_in_flight` are unanswered is dropped
    /// and counted as an error (`DROPPED`).
    Rate {
        per_second: f64,
        max_in_flight: usize,
    },
}

impl Pace {
    fn describe(self) -> String {
        match self {
            Self::Concurrency(n) => format!("concurrency {n}"),
            Self::Rate {
                per_second,
                max_in_flight,
            } => format!("rate {per_second}/s (at most {max_in_flight} in flight)"),
        }
    }

    /// Connections by default: one per 128 calls that may be in flight
    /// (the server's default HTTP/2 streams per connection), 1 to 4.
    fn default_connections(self) -> usize {
        let in_flight = match self {
            Self::Concurrency(n) => n,
            Self::Rate { max_in_flight, .. } => max_in_flight,
        };
        in_flight.div_ceil(128).clamp(1, 4)
    }
}

/// Whether to show a live line while the load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Once a second on stderr, when stderr is a terminal.
    Terminal,
    /// Never.
    Silent,
}

/// What to run, against what.
#[derive(Clone)]
pub struct Options {
    /// The server.
    pub addr: SocketAddr,
    /// Bearer token sent on every call.
    pub token: String,
    /// Run one after another, after seeding once.
    pub workloads: Vec<Workload>,
    pub pace: Pace,
    /// Measured time of each workload.
    pub duration: Duration,
    /// Time each workload runs first, not measured.
    pub warmup: Duration,
    /// Also run `ping` and `insert` at the same pace for the same time.
    pub ceiling: bool,
    /// HTTP/2 connections; `None`: by the pace (1 to 4).
    pub connections: Option<usize>,
    /// Deadline of each call.
    pub timeout: Duration,
    pub seed: SeedSize,
    /// Names the seeded clinic and its request ids; `None`: a new one.
    pub run_id: Option<String>,
    /// A Prometheus scraping the server, e.g. `http://127.0.0.1:9090`.
    pub prometheus: Option<String>,
    /// The server's database kind, for the report (`sqlite`, `postgres`).
    pub database: Option<String>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("addr", &self.addr)
            .field("workloads", &self.workloads)
            .field("pace", &self.pace)
            .field("duration", &self.duration)
            .field("warmup", &self.warmup)
            .field("ceiling", &self.ceiling)
            .field("connections", &self.connections)
            .field("seed", &self.seed)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// The mixed workload against `addr` at concurrency 8 for 30 s after a
    /// 2 s warm-up, on the default clinic, without the ceiling.
    pub fn new(addr: SocketAddr, token: impl Into<String>) -> Self {
        Self {
            addr,
            token: token.into(),
            workloads: vec![Workload::Mixed],
            pace: Pace::Concurrency(8),
            duration: Duration::from_secs(30),
            warmup: Duration::from_secs(2),
            ceiling: false,
            connections: None,
            timeout: Duration::from_secs(10),
            seed: SeedSize::default(),
            run_id: None,
            prometheus: None,
            database: None,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.workloads.is_empty() || self.ceiling,
            "no workload to run"
        );
        match self.pace {
            Pace::Concurrency(n) => anyhow::ensure!(n > 0, "the concurrency must be at least 1"),
            Pace::Rate {
                per_second,
                max_in_flight,
            } => {
                anyhow::ensure!(
                    per_second.is_finite() && per_second > 0.0,
                    "the rate must be above 0"
                );
                anyhow::ensure!(max_in_flight > 0, "the in-flight cap must be at least 1");
            }
        }
        anyhow::ensure!(!self.duration.is_zero(), "the duration must be above 0");
        if let Some(run_id) = &self.run_id {
            anyhow::ensure!(
                !run_id.is_empty()
                    && run_id.len() <= 40
                    && run_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "a run id is 1 to 40 letters, digits, - or _"
            );
        }
        Ok(())
    }
}

/// Seeds a clinic (unless only the ceiling runs), runs each workload (and
/// the ceiling, first, when asked) and reports what it measured. Errors
/// are a run that could not start or seed; the load's own errors are in the
/// report.
pub async fn run(options: Options, progress: Progress) -> anyhow::Result<Report> {
    options.check()?;
    let started_at = chrono::Utc::now();
    let live = progress == Progress::Terminal && std::io::stderr().is_terminal();
    let run_id = options.run_id.clone().unwrap_or_else(|| {
        let id = uuid::Uuid::now_v7().simple().to_string();
        id[id.len() - 12..].to_owned()
    });
    let credentials = Credentials::new(&options.token)?;
    let connections = options
        .connections
        .unwrap_or_else(|| options.pace.default_connections())
        .max(1);
    let clients = client::connect(options.addr, connections, options.timeout, &credentials).await?;
    let first = clients.first().cloned().context("no connection")?;
    if options.ceiling {
        preflight_ceiling(first.clone()).await?;
    }

    let nhs = NhsNumbers::for_run(&run_id);
    let (world, seed) = if options.workloads.iter().any(|w| w.needs_clinic()) {
        if live {
            eprintln!("medsec load: seeding a clinic (run {run_id})");
        }
        let seeded = seed::seed(&first, &options.seed, &run_id, &nhs)
            .await
            .context("cannot seed the clinic")?;
        let figures = seeded.figures.clone();
        (World::new(seeded, nhs), Some(figures))
    } else {
        (World::bare(nhs), None)
    };
    let world = Arc::new(world);
    let rng_seed = Rng::seed_of(&run_id);

    let phase = |workload: Workload| Phase {
        workload,
        options: &options,
        clients: &clients,
        world: world.clone(),
        rng_seed: rng_seed ^ Rng::seed_of(workload.name()),
        live,
    };
    let ceiling = if options.ceiling {
        Some(CeilingReport {
            ping: phase(Workload::Ping).run().await?,
            insert: phase(Workload::Insert).run().await?,
        })
    } else {
        None
    };
    let mut workloads = Vec::with_capacity(options.workloads.len());
    for &workload in &options.workloads {
        let mut report = phase(workload).run().await?;
        if let Some(ceiling) = &ceiling {
            report.fraction_of_ping =
                report::fraction(report.rpcs_per_second, ceiling.ping.rpcs_per_second);
            report.fraction_of_insert =
                report::fraction(report.rpcs_per_second, ceiling.insert.rpcs_per_second);
        }
        workloads.push(report);
    }

    let server_metrics = match &options.prometheus {
        Some(url) => prometheus::server_metrics(url).await,
        None => ServerMetrics::default(),
    };
    let (concurrency, rate_per_second, max_in_flight) = match options.pace {
        Pace::Concurrency(n) => (Some(n), None, None),
        Pace::Rate {
            per_second,
            max_in_flight,
        } => (None, Some(per_second), Some(max_in_flight)),
    };
    Ok(Report {
        tool: format!("medsec load {}", env!("CARGO_PKG_VERSION")),
        run_id,
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: command_line("uname", &["-sr"]),
        },
        commit: std::env::var("MEDSEC_COMMIT")
            .ok()
            .filter(|commit| !commit.trim().is_empty())
            .or_else(|| {
                // The tree this generator was built from, when it is a checkout.
                let tree = env!("CARGO_MANIFEST_DIR");
                command_line("git", &["-C", tree, "rev-parse", "--short", "HEAD"])
            }),
        database: options.database.clone(),
        options: OptionsReport {
            addr: options.addr.to_string(),
            pace: options.pace.describe(),
            concurrency,
            rate_per_second,
            max_in_flight,
            duration_secs: options.duration.as_secs_f64(),
            warmup_secs: options.warmup.as_secs_f64(),
            connections,
            timeout_secs: options.timeout.as_secs_f64(),
            ceiling: options.ceiling,
            seed: options.seed,
        },
        seed,
        workloads,
        ceiling,
        server_metrics,
    })
}

/// Fails early, and says why, when the ceiling cannot be measured.
async fn preflight_ceiling(mut clients: Clients) -> anyhow::Result<()> {
    match clients
        .ceiling
        .ping(medsec_proto::ceiling::v1::PingRequest {})
        .await
    {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::Unimplemented => anyhow::bail!(
            "the server does not serve medsec.ceiling.v1.CeilingService: start it with \
             server.ceiling = true (MEDSEC__SERVER__CEILING=true) to measure the ceiling"
        ),
        Err(status) => anyhow::bail!(
            "the ceiling's Ping failed: {}: {}",
            stats::code_name(status.code()),
            status.message()
        ),
    }
}

/// The first line `program args` prints, when it runs and succeeds.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.lines().next()?.trim().to_owned();
    (output.status.success() && !line.is_empty()).then_some(line)
}

/// One workload's run: warm-up, then the measured window.
struct Phase<'a> {
    workload: Workload,
    options: &'a Options,
    clients: &'a [Clients],
    world: Arc<World>,
    rng_seed: u64,
    live: bool,
}

impl Phase<'_> {
    async fn run(self) -> anyhow::Result<PhaseReport> {
        let start = Instant::now();
        let measure_from = start + self.options.warmup;
        let end = measure_from + self.options.duration;
        let recorder = Recorder::new(measure_from)?;
        let ticker = self.live.then(|| {
            tokio::spawn(show_progress(
                self.workload.name(),
                recorder.clone(),
                measure_from,
            ))
        });
        let ran = match self.options.pace {
            Pace::Concurrency(workers) => self.closed_loop(workers, &recorder, end).await,
            Pace::Rate {
                per_second,
                max_in_flight,
            } => {
                self.open_loop(per_second, max_in_flight, &recorder, start, end)
                    .await
            }
        };
        if let Some(ticker) = ticker {
            ticker.abort();
            eprintln!();
        }
        ran?;
        Ok(PhaseReport::of(
            self.workload.name(),
            &recorder.snapshot(),
            self.options.duration,
        ))
    }

    fn clients_for(&self, n: usize) -> Clients {
        // `connect` makes at least one; the modulo spreads workers over them.
        self.clients[n % self.clients.len()].clone()
    }

    async fn closed_loop(
        &self,
        workers: usize,
        recorder: &Recorder,
        end: Instant,
    ) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        for n in 0..workers {
            let mut clients = self.clients_for(n);
            let world = self.world.clone();
            let recorder = recorder.clone();
            let workload = self.workload;
            let mut rng = Rng::new(self.rng_seed ^ (n as u64).wrapping_mul(0x9e37_79b9));
            tasks.spawn(async move {
                while Instant::now() < end {
                    workload::run_step(workload, &mut clients, &world, &mut rng, &recorder, None)
                        .await;
                }
            });
        }
        join_all(tasks).await
    }

    async fn open_loop(
        &self,
        per_second: f64,
        max_in_flight: usize,
        recorder: &Recorder,
        start: Instant,
        end: Instant,
    ) -> anyhow::Result<()> {
        let interval = Duration::from_secs_f64(1.0 / per_second);
        let in_flight = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
        let mut tasks = JoinSet::new();
        for n in 0u64.. {
            let Some(scheduled) = u32::try_from(n)
                .ok()
                .and_then(|n| interval.checked_mul(n))
                .map(|offset| start + offset)
            else {
                break;
            };
            if scheduled >= end {
                break;
            }
            if scheduled > Instant::now() {
                tokio::time::sleep_until(scheduled).await;
            }
            while let Some(done) = tasks.try_join_next() {
                done.context("a load worker failed")?;
            }
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                recorder.dropped(scheduled);
                continue;
            };
            let mut clients = self.clients_for(usize::try_from(n).unwrap_or(0));
            let world = self.world.clone();
            let recorder = recorder.clone();
            let workload = self.workload;
            let mut rng = Rng::new(self.rng_seed ^ n.wrapping_mul(0x9e37_79b9));
            tasks.spawn(async move {
                workload::run_step(
                    workload,
                    &mut clients,
                    &world,
                    &mut rng,
                    &recorder,
                    Some(scheduled),
                )
                .await;
                drop(permit);
            });
        }
        join_all(tasks).await
    }
}

async fn join_all(mut tasks: JoinSet<()>) -> anyhow::Result<()> {
    while let Some(done) = tasks.join_next().await {
        done.context("a load worker failed")?;
    }
    Ok(())
}

/// Prints the live line once a second: elapsed, rate, errors, p50 and p99
/// of the measured window so far.
async fn show_progress(workload: &'static str, recorder: Recorder, measure_from: Instant) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let line = if now < measure_from {
            format!("{workload}: warming up")
        } else if now < measure_from + Duration::from_millis(500) {
            // Too soon for figures worth reading.
            continue;
        } else {
            let elapsed = now - measure_from;
            let (answers, errors, p50, p99) = recorder.live();
            format!(
                "{workload}: {:>5.1} s  {:>8.1} req/s  {errors} errors  p50 {:.2} ms  p99 {:.2} ms",
                elapsed.as_secs_f64(),
                answers as f64 / elapsed.as_secs_f64().max(1e-3),
                p50.as_secs_f64() * 1000.0,
                p99.as_secs_f64() * 1000.0,
            )
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K{line}");
        let _ = stderr.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_follow_the_calls_in_flight() {
        assert_eq!(Pace::Concurrency(8).default_connections(), 1);
        assert_eq!(Pace::Concurrency(300).default_connections(), 3);
        let rate = Pace::Rate {
            per_second: 100.0,
            max_in_flight: 10_000,
        };
        assert_eq!(rate.default_connections(), 4);
    }

    #[test]
    fn bad_options_are_refused() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut options = Options::new(addr, "t");
        options.pace = Pace::Concurrency(0);
        assert!(options.check().is_err());
        options.pace = Pace::Concurrency(1);
        options.run_id = Some("has space".into());
        assert!(options.check().is_err());
        options.run_id = Some("nightly-1".into());
        assert!(options.check().is_ok());
    }
}
