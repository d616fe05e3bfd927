//! Layered settings: built-in defaults, then an optional TOML file, then
//! `MEDSEC__SECTION__KEY` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use serde::Deserialize;

mod database;
mod server;

pub use database::{DatabaseSettings, TlsRequirementError};
pub use server::{ClientAuth, ServerSettings, ServerTlsSettings};

/// The defaults, written as the TOML a user would write. Every key can be
/// overridden by a file, the environment or a flag.
pub const DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:50051"
trace_health_and_reflection = false
ceiling = false
request_timeout_secs = 30
max_message_bytes = 16777216
shutdown_grace_millis = 500
drain_timeout_secs = 20
max_in_flight = 512
max_concurrent_streams = 128
http2_keepalive_interval_secs = 30
http2_keepalive_timeout_secs = 10
tcp_keepalive_secs = 60
max_connection_age_secs = 1800
max_connection_age_grace_secs = 30
request_id_retention_hours = 168

[database]
url = "sqlite://data/medsec.db?mode=rwc"
max_connections = 10
min_connections = 0
connect_timeout_secs = 10
acquire_timeout_secs = 5
sqlite_busy_timeout_millis = 5000
migrate_on_start = true
require_verified_tls = false

[scheduling]
max_message_bytes = 1048576
max_concurrent_runs = 1
solve_threads = 2
max_run_pairs = 4000000000
store_margin_millis = 3000
run_lease_secs = 120
automatic_offers = false
automatic_offer_hold_hours = 48

[records]
max_document_bytes = 10485760
max_message_bytes = 12582912

[billing]
max_message_bytes = 1048576

[billing.charges]
new = "{SPECIALTY}-NEW"
follow_up = "{SPECIALTY}-FUP"

[events]
relay = true
stream = "MEDSEC"
poll_millis = 250
batch = 200
claim_lease_secs = 30
retry_min_millis = 500
retry_max_secs = 60
retention_hours = 168
duplicate_window_secs = 600
ack_wait_secs = 30
subject_prefix = "medsec"

[peers]
timeout_millis = 2000
retries = 2
retry_backoff_millis = 50
breaker_failures = 5
breaker_open_secs = 10

[auth]
audience = "medsec"
algorithm = "RS256"
roles_claim = "roles"
leeway_secs = 30
jwks_refresh_secs = 300
jwks_refetch_min_secs = 30
allow_dev_issuer = false
open_reflection = false

[telemetry]
log_filter = "info"
log_format = "text"
service_name = "medsec"
"#;

/// The default configuration file, read when present and no other is named.
pub const DEFAULT_CONFIG_FILE: &str = "medsec.toml";

/// Every setting of a medsec process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub records: RecordsSettings,
    pub scheduling: SchedulingSettings,
    pub billing: BillingSettings,
    pub events: EventsSettings,
    pub peers: PeerSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
}

/// Who may call: the OpenID Connect issuer of staff tokens (or, with none,
/// the development issuer) and how its tokens are read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The issuer (`iss`) of staff tokens, e.g.
    /// `https://login.example.nhs.uk/realms/trust`. Unset: the development
    /// issuer signs tokens (`medsec token`), on loopback only.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Where the issuer's keys are; unset: found by OpenID Connect discovery.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The audience (`aud`) tokens must be for.
    pub audience: String,
    /// The one signing algorithm accepted: `RS256` or `ES256`.
    pub algorithm: TokenAlgorithm,
    /// The claim holding the roles; dots walk into objects
    /// (`realm_access.roles`).
    pub roles_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// How often the issuer's keys are fetched again.
    pub jwks_refresh_secs: u64,
    /// The least time between fetches caused by a token naming an unknown key.
    pub jwks_refetch_min_secs: u64,
    /// Let the development issuer serve off loopback (a laptop's compose
    /// stack); never in production.
    pub allow_dev_issuer: bool,
    /// Serve reflection without a role (development).
    pub open_reflection: bool,
}

/// The signing algorithms a configured issuer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TokenAlgorithm {
    RS256,
    ES256,
}

/// SchedulingService's optimiser runs: how many at once, on how many
/// threads, how large, and how much of a call's deadline storing needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulingSettings {
    /// Largest message SchedulingService receives or sends.
    pub max_message_bytes: usize,
    /// Optimisation runs solving at once in this process; a run that cannot
    /// start within its deadline is `RESOURCE_EXHAUSTED`.
    pub max_concurrent_runs: usize,
    /// Threads one solve may use.
    pub solve_threads: usize,
    /// Largest run, as waiting referrals times free slots;
    /// `RESOURCE_EXHAUSTED` above it.
    pub max_run_pairs: u64,
    /// What a run keeps of its deadline for storing its allocations: the
    /// solve is stopped that long before the deadline, with the best
    /// allocation found (never worse than greedy).
    pub store_margin_millis: u64,
    /// How long a run's claim on its specialties outlives the last sign of
    /// life of the process running it: a run renews it every third of the
    /// lease for as long as it runs, so only a crashed or vanished process
    /// lets it lapse, and the specialty is free again at most this long
    /// (rounded up to a whole second) after its last renewal. At least 1.
    pub run_lease_secs: u64,
    /// Offer a freed slot by itself: hold it for the waiting referral the
    /// optimiser places in it, as `OfferFreedSlot` does (default off: the
    /// clinic offers freed slots when it chooses).
    pub automatic_offers: bool,
    /// How long an automatic offer holds the slot (never past its start).
    pub automatic_offer_hold_hours: u64,
}

impl SchedulingSettings {
    /// [`Self::run_lease_secs`] as a duration, at least a second.
    pub fn run_lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.run_lease_secs.max(1))
    }
}

/// BillingService's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    /// Largest message BillingService receives or sends.
    pub max_message_bytes: usize,
    /// The charges billing raises by itself from scheduling's events.
    pub charges: ChargeRules,
}

/// Price-list codes of the charges billing raises for attended and missed
/// appointments. `{SPECIALTY}` stands for the slot's specialty, upper-cased
/// with runs of other characters made `-` ("cardiology" -> "CARDIOLOGY").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeRules {
    /// Code charged for a fulfilled new-patient appointment.
    pub new: String,
    /// Code charged for a fulfilled follow-up appointment.
    pub follow_up: String,
    /// Code charged when a patient did not attend (the clinic's DNA fee);
    /// unset: no charge for a missed appointment.
    #[serde(default)]
    pub did_not_attend: Option<String>,
}

/// Calls to the suite's other services when they run in other processes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    /// RecordsService, when not served by this process (e.g.
    /// `https://records.medsec.internal:50051`); scheduling asks it whether
    /// a patient exists and is active. Unset and not served here: no check.
    #[serde(default)]
    pub records_url: Option<String>,
    /// CA (PEM) of the peers' server certificates, for `https` URLs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This service's client certificate (PEM) and key, its identity to the
    /// peer (mutual TLS: the `service` role).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Deadline of one attempt.
    pub timeout_millis: u64,
    /// Attempts after the first, for UNAVAILABLE and DEADLINE_EXCEEDED.
    pub retries: u32,
    /// Wait before the first retry, doubled before each next.
    pub retry_backoff_millis: u64,
    /// Consecutive failed calls that open the circuit breaker ...
    pub breaker_failures: u32,
    /// ... for this long: calls then fail at once with UNAVAILABLE, until
    /// one trial call succeeds.
    pub breaker_open_secs: u64,
}

/// Events: the outbox relay, the broker, and how long events are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSettings {
    /// NATS server with JetStream (e.g. `nats://127.0.0.1:4222`); unset:
    /// events are delivered in-process (one process serving every
    /// consuming service).
    #[serde(default)]
    pub nats_url: Option<String>,
    /// Whether this process relays its services' outbox (every replica may;
    /// off only where another process is to do it).
    pub relay: bool,
    /// The JetStream stream holding the suite's subjects (`medsec.>`).
    pub stream: String,
    /// How often the relay looks for new outbox rows when not woken.
    pub poll_millis: u64,
    /// Outbox rows a relay claims at a time.
    pub batch: u64,
    /// How long a relay's claim on rows lasts before another replica may
    /// take them (a relay that died mid-batch).
    pub claim_lease_secs: u64,
    /// First wait before retrying an event whose delivery failed; doubled
    /// on each failure up to `retry_max_secs`.
    pub retry_min_millis: u64,
    pub retry_max_secs: u64,
    /// Relayed events and consumers' inbox rows are kept this long, then
    /// pruned (WatchEvents resumes within it).
    pub retention_hours: u64,
    /// JetStream's window for dropping a republished event id.
    pub duplicate_window_secs: u64,
    /// How long JetStream waits for a consumer's acknowledgement before
    /// delivering the event again.
    pub ack_wait_secs: u64,
    /// First token of the NATS subjects: `<prefix>.<service>.<event>`
    /// (default `medsec`; a second suite sharing a NATS server sets its own,
    /// with its own `stream`).
    pub subject_prefix: String,
}

impl EventsSettings {
    pub fn poll(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.poll_millis.max(10))
    }

    pub fn claim_lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.claim_lease_secs.max(1))
    }

    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.retention_hours.max(1).saturating_mul(3600))
    }

    /// The NATS subject of events of `kind` (`medsec.<service>.<event>`).
    pub fn subject_of(&self, kind: &str) -> String {
        match kind.strip_prefix("medsec.") {
            Some(rest) => format!("{}.{rest}", self.subject_prefix),
            None => kind.to_owned(),
        }
    }

    /// The wait before attempt `attempts + 1` of a failed delivery.
    pub fn backoff(&self, attempts: u32) -> std::time::Duration {
        let min = self.retry_min_millis.max(1);
        let max = self.retry_max_secs.max(1).saturating_mul(1000);
        let wait = min.saturating_mul(1u64 << attempts.min(20));
        std::time::Duration::from_millis(wait.min(max))
    }
}

/// RecordsService's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsSettings {
    /// Largest clinical document accepted, in bytes (default 10 MiB). Keep
    /// `records.max_message_bytes` above it.
    pub max_document_bytes: usize,
    /// Largest message RecordsService receives or sends: room for a document.
    pub max_message_bytes: usize,
}

/// Logs, traces and metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` env-filter directives, e.g. `info,medsec_records=debug`.
    /// `RUST_LOG`, when set, wins.
    pub log_filter: String,
    pub log_format: LogFormat,
    /// OTLP/gRPC collector endpoint (e.g. `http://127.0.0.1:4317`); traces and
    /// metrics are exported only when it is set. `https://…` is TLS.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The CA (PEM) that signed an `https` collector's certificate; unset:
    /// the public web roots (Mozilla's, as shipped by `webpki-roots`).
    #[serde(default)]
    pub otlp_ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for a collector that asks for one; needs
    /// `otlp_key_file`.
    #[serde(default)]
    pub otlp_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `otlp_cert_file`.
    #[serde(default)]
    pub otlp_key_file: Option<PathBuf>,
    /// `service.name` of the exported telemetry.
    pub service_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Command-line values that override every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
}

/// The error of a configuration that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that cannot be read, or a key no setting has (named with
    /// its path and where it came from).
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A configuration file named explicitly that is not there.
    #[error("the configuration file {} does not exist", .0.display())]
    Missing(PathBuf),
}

impl Settings {
    /// Loads defaults, then `file` (or `medsec.toml` in the working folder
    /// if present; no other folder is searched), then the environment, then
    /// `overrides`. A file named that does not exist, and a key that names
    /// no setting, are errors.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        if let Some(named) = file
            && !named.is_file()
        {
            return Err(ConfigError::Missing(named.to_path_buf()));
        }
        let file = file.or_else(|| {
            let default = Path::new(DEFAULT_CONFIG_FILE);
            default.is_file().then_some(default)
        });
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let mut figment = figment.merge(Env::prefixed("MEDSEC__").split("__"));
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("server.listen", listen.to_string()));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        figment
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))
    }

    /// The defaults alone, for tests and tools.
    pub fn defaults() -> Result<Self, ConfigError> {
        Figment::from(Toml::string(DEFAULTS))
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))
    }
}

#[cfg(test)]
// figment's Jail closures return its own (large) error type.
#[allow(clippy::result_large_err)]
mod tests;
