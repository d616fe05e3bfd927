//! `medsec`: serve the suite (all services or some), migrate its database,
//! sign development tokens, or verify the audit trail.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
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
}

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
        Command::Health(_) => {}
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
