//! `medsec`: serve the suite (all services or some), or migrate its database.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use medsec::{Application, ServiceName};
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
    /// Apply pending migrations and exit.
    Migrate(CommonArgs),
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
    let (common, listen) = match &cli.command {
        Command::Serve(args) => (&args.common, args.listen),
        Command::Migrate(args) => (args, None),
    };
    let overrides = Overrides {
        listen,
        database_url: common.database.clone(),
    };
    let settings = Settings::load(cli.config.as_deref(), &overrides)?;
    let _telemetry = telemetry::init(&settings.telemetry)?;

    match cli.command {
        Command::Serve(args) => {
            let app = Application::build(&settings, &args.common.services).await?;
            app.run_until_stopped(server::shutdown_signal()).await?;
        }
        Command::Migrate(args) => {
            let db = medsec_platform::db::connect(&settings.database)
                .await
                .context("cannot open the database")?;
            medsec::migrate(&db, &medsec::resolve(&args.services)).await?;
        }
    }
    Ok(())
}
