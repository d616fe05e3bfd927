//! `medsec`: serve the suite (all services or some), migrate its database,
//! sign development tokens, verify the audit trail, or load a running
//! server and report what it does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use medsec::load::{self, Pace, Progress, Workload};
use medsec::{Application, ServiceName};
use medsec_platform::auth::dev_issuer::DevIssuer;
use medsec_platform::auth::{Purpose, Role};
use medsec_platform::config::Overrides;
use medsec_platform::{Settings, server, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "medsec",
    version,
    about = "The back office of a UK clinic, as gRPC services"
)]
struct Cli {
    /// TOML configuration file (default: ./medsec.toml when present).
    #[arg(long, global = true, env = "MEDSEC_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the suite, or the services named with --service.
    Serve(ServeArgs),
    /// Apply pending migrations and exit: as the owner role of
    /// database.migration_url when set, then granting database.runtime_role
    /// its privileges.
    Migrate(CommonArgs),
    /// Print a token from the development issuer (when no auth.issuer is
    /// configured), for the server run with the same configuration.
    Token(TokenArgs),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Ask a server whether it is serving (gRPC health): prints its status
    /// and exits 0 when SERVING, 1 otherwise. For container health checks
    /// and operators probing a port.
    Health(HealthArgs),
    /// Seed a clinic through the API of a running server, drive it with
    /// workloads at a fixed concurrency or rate, and report throughput and
    /// latency per RPC (beside the stack's own ceiling with --ceiling).
    Load(LoadArgs),
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Address of the server (default: server.listen of the configuration).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Workloads, run one after another on one seeded clinic
    /// (comma-separated or repeated).
    #[arg(
        long = "workload",
        value_enum,
        value_delimiter = ',',
        default_value = "mixed"
    )]
    workloads: Vec<Workload>,
    /// Closed loop: this many workers, each sending its next step when its
    /// last one answered [default: 8].
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open loop: steps scheduled at this many a second whatever the
    /// answers, each timed from its scheduled start.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: steps unanswered at once beyond which due steps are
    /// dropped (and counted as errors).
    #[arg(long, default_value_t = 512, requires = "rate")]
    max_in_flight: usize,
    /// Seconds each workload is measured.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds each workload runs first, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Also drive the ceiling (Ping, and Insert of one row) at the same pace
    /// and report each workload as a fraction of it; the server needs
    /// server.ceiling = true.
    #[arg(long)]
    ceiling: bool,
    /// Write the report to PATH.json and PATH.md.
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Clinicians to seed, each with a session every weekday.
    #[arg(long, default_value_t = 8)]
    clinicians: usize,
    /// Weeks of slots to seed, from tomorrow.
    #[arg(long, default_value_t = 4)]
    weeks: u32,
    /// Patients to seed, each with a waiting referral.
    #[arg(long, default_value_t = 400)]
    patients: usize,
    /// HTTP/2 connections [default: one per 128 calls in flight, 1 to 4].
    #[arg(long)]
    connections: Option<usize>,
    /// Seconds before a call is given up.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Bearer token sent on every call (needs the roles of the workloads;
    /// the admin role for --ceiling). Default: one from the development
    /// issuer on the configured database, with every staff role.
    #[arg(long, env = "MEDSEC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Database URL, as given to `medsec serve` (the development issuer's
    /// key is kept there).
    #[arg(long)]
    database: Option<String>,
    /// Names the seeded clinic and its request ids (letters, digits, - and
    /// _), so a retried seed makes nothing twice [default: a new one].
    #[arg(long)]
    run_id: Option<String>,
    /// A Prometheus scraping the server, e.g. http://127.0.0.1:9090: the
    /// report adds the server's own p99 per method.
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
}

/// Runs `medsec load` and prints its report (Markdown) on stdout.
async fn load(args: &LoadArgs, settings: &Settings) -> anyhow::Result<()> {
    let seconds = |flag: &str, value: f64| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| anyhow::anyhow!("--{flag} must be a number of seconds, not {value}"))
    };
    let (token, minted) = match &args.token {
        Some(token) => (token.clone(), false),
        None => {
            let token = load::dev_token(settings, DEV_TOKEN_LIFETIME)
                .await
                .context("cannot sign a token (or pass --token)")?;
            (token, true)
        }
    };
    let mut options = load::Options::new(args.addr.unwrap_or(settings.server.listen), token);
    options.workloads = args.workloads.clone();
    options.pace = match args.rate {
        Some(per_second) => Pace::Rate {
            per_second,
            max_in_flight: args.max_in_flight,
        },
        None => Pace::Concurrency(args.concurrency.unwrap_or(8)),
    };
    options.duration = seconds("duration", args.duration)?;
    options.warmup = seconds("warmup", args.warmup)?;
    options.timeout = seconds("timeout", args.timeout)?;
    options.ceiling = args.ceiling;
    options.connections = args.connections;
    options.seed = load::SeedSize {
        clinicians: args.clinicians,
        weeks: args.weeks,
        patients: args.patients,
    };
    options.run_id = args.run_id.clone();
    options.prometheus = args.prometheus.clone();
    // Known only when the server's database is the one configured here:
    // named on the command line, or holding the key that signed the token.
    options.database = (minted || args.database.is_some()).then(|| {
        let url = settings.database.url();
        url.split(':').next().unwrap_or(url).to_owned()
    });
    let report = load::run(options, Progress::Terminal).await?;
    print!("{}", report.to_markdown());
    if let Some(path) = &args.report {
        let (json, markdown) = report.write(path)?;
        eprintln!(
            "medsec load: report written to {} and {}",
            json.display(),
            markdown.display()
        );
    }
    Ok(())
}

/// How long a token `medsec load` signs for itself lasts.
const DEV_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

#[derive(Debug, Args)]
struct HealthArgs {
    /// Address of the server (default: server.listen of the configuration).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// One service's status, e.g. medsec.records.v1.RecordsService
    /// (default: the server as a whole).
    #[arg(long, default_value = "")]
    service: String,
    /// CA (PEM) of a TLS server's certificate: the probe then uses TLS.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Name the TLS server's certificate carries (default: the address's host).
    #[arg(long)]
    tls_name: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute every hash chain of the audit trail and report the first
    /// break; exits non-zero when the trail is broken.
    Verify(DatabaseArgs),
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// Database URL, as given to `medsec serve`.
    #[arg(long)]
    database: Option<String>,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// A role the token carries; repeat for several (secretary, clinician,
    /// billing_clerk, finance_approver, waiting_list_manager, auditor, admin).
    #[arg(long = "role", required = true, value_parser = parse_role)]
    roles: Vec<Role>,
    /// Who the token names (its `sub`), e.g. s.jones.
    #[arg(long)]
    subject: String,
    /// Purpose of use carried as a claim (direct_care, administration,
    /// billing, audit, break_glass); otherwise send x-medsec-purpose.
    #[arg(long, value_parser = parse_purpose)]
    purpose: Option<Purpose>,
    /// Minutes the token lasts.
    #[arg(long, default_value_t = 480)]
    minutes: u64,
    /// Database URL, as given to `medsec serve` (the issuer's key is kept there).
    #[arg(long)]
    database: Option<String>,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse_staff(text).ok_or_else(|| {
        let roles: Vec<&str> = Role::STAFF.iter().map(|role| role.as_str()).collect();
        format!("not a role; one of {}", roles.join(", "))
    })
}

fn parse_purpose(text: &str) -> Result<Purpose, String> {
    Purpose::parse(text).ok_or_else(|| {
        let purposes: Vec<&str> = Purpose::ALL.iter().map(|p| p.as_str()).collect();
        format!("not a purpose; one of {}", purposes.join(", "))
    })
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:50051).
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Only this service; repeat for several (default: all).
    #[arg(long = "service", value_enum)]
    services: Vec<ServiceName>,
    /// Database URL: sqlite://PATH?mode=rwc or postgres://USER@HOST/DB.
    #[arg(long)]
    database: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let overrides = match &cli.command {
        Command::Serve(args) => Overrides {
            listen: args.listen,
            database_url: args.common.database.clone(),
        },
        Command::Migrate(args) => Overrides {
            listen: None,
            database_url: args.database.clone(),
        },
        Command::Token(args) => Overrides {
            listen: None,
            database_url: args.database.clone(),
        },
        Command::Audit(AuditCommand::Verify(args)) => Overrides {
            listen: None,
            database_url: args.database.clone(),
        },
        Command::Health(_) => Overrides::default(),
        Command::Load(args) => Overrides {
            listen: None,
            database_url: args.database.clone(),
        },
    };
    if let Command::Health(args) = &cli.command {
        let settings = Settings::load(cli.config.as_deref(), &overrides)?;
        let addr = args.addr.unwrap_or(settings.server.listen);
        let status = health::probe(addr, args).await;
        match status {
            Ok(status) => {
                println!("{status}");
                std::process::exit(if status == "SERVING" { 0 } else { 1 });
            }
            Err(error) => {
                eprintln!("medsec health: {addr}: {error:#}");
                std::process::exit(1);
            }
        }
    }
    if let Command::Load(args) = &cli.command {
        // The report goes to stdout and the live line to stderr: no logs.
        let settings = Settings::load(cli.config.as_deref(), &overrides)?;
        return load(args, &settings).await;
    }
    let settings = Settings::load(cli.config.as_deref(), &overrides)?;
    let _telemetry = telemetry::init(&settings.telemetry)?;

    match cli.command {
        Command::Serve(args) => {
            let app = Application::build(&settings, &args.common.services).await?;
            app.run_until_stopped(server::shutdown_signal()).await?;
        }
        Command::Migrate(args) => {
            medsec::migrate_as_owner(&settings.database, &medsec::resolve(&args.services)).await?;
        }
        Command::Token(args) => {
            if let Some(issuer) = &settings.auth.issuer {
                anyhow::bail!(
                    "tokens come from the configured issuer {issuer}; medsec token signs for \
                     the development issuer only (no auth.issuer)"
                );
            }
            let db = medsec_platform::db::connect(&settings.database)
                .await
                .context("cannot open the database")?;
            let issuer = DevIssuer::open(&db).await?;
            let token = issuer.mint(
                &args.subject,
                &args.roles,
                &settings.auth.audience,
                Duration::from_secs(args.minutes.saturating_mul(60)),
                args.purpose,
            )?;
            println!("{token}");
        }
        Command::Audit(AuditCommand::Verify(_)) => {
            let db = medsec_platform::db::connect(&settings.database)
                .await
                .context("cannot open the database")?;
            let report = medsec_platform::audit::verify(&db)
                .await
                .context("cannot read the audit trail")?;
            if !report.intact() {
                anyhow::bail!("{}", report.to_string().trim_end());
            }
            println!("{report}");
        }
        // Answered above, before telemetry starts.
        Command::Health(_) | Command::Load(_) => {}
    }
    Ok(())
}

mod health {
    use std::net::SocketAddr;
    use std::time::Duration;

    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::HealthArgs;

    /// The health status `addr` reports for `args.service`, by name.
    pub(super) async fn probe(addr: SocketAddr, args: &HealthArgs) -> anyhow::Result<String> {
        let timeout = Duration::from_secs(args.timeout.max(1));
        let scheme = if args.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))?
            .connect_timeout(timeout)
            .timeout(timeout);
        if let Some(ca) = &args.ca_file {
            let mut tls =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca)?));
            if let Some(name) = &args.tls_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint.tls_config(tls)?;
        }
        let channel = endpoint.connect().await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await
            .map_err(|status| anyhow::anyhow!("{}: {}", status.code(), status.message()))?;
        Ok(answer.into_inner().status().as_str_name().to_owned())
    }
}
