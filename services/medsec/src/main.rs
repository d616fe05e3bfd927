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
    };
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
    }
    Ok(())
}
