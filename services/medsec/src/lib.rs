//! The medsec suite as one application: which services to run, on which
//! database, behind one gRPC listener.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use medsec_platform::Settings;
use medsec_platform::auth::AuthLayer;
use medsec_platform::auth::policy::ServicePolicy;
use medsec_platform::config::DatabaseSettings;
use medsec_platform::idempotency::{self, IdempotencyKeys};
use medsec_platform::server::{GrpcServer, Services};
use sea_orm::DatabaseConnection;

/// A service of the suite, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ServiceName {
    Records,
    Scheduling,
    Billing,
}

impl ServiceName {
    pub const ALL: [Self; 3] = [Self::Records, Self::Scheduling, Self::Billing];

    /// The fully qualified gRPC name, as health and reflection report it.
    pub fn grpc_name(self) -> &'static str {
        match self {
            Self::Records => medsec_records::SERVICE_NAME,
            Self::Scheduling => medsec_scheduling::SERVICE_NAME,
            Self::Billing => medsec_billing::SERVICE_NAME,
        }
    }

    /// The service's rows of the policy table.
    pub fn policy(self) -> &'static ServicePolicy {
        match self {
            Self::Records => &medsec_records::POLICY,
            Self::Scheduling => &medsec_scheduling::POLICY,
            Self::Billing => &medsec_billing::POLICY,
        }
    }

    /// The service's table of create `request_id`s, purged as they expire.
    pub fn idempotency_keys(self) -> IdempotencyKeys {
        match self {
            Self::Records => medsec_records::store::IDEMPOTENCY_KEYS,
            Self::Scheduling => medsec_scheduling::store::IDEMPOTENCY_KEYS,
            Self::Billing => medsec_billing::store::IDEMPOTENCY_KEYS,
        }
    }

    async fn migrate(self, db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        match self {
            Self::Records => medsec_records::migrate(db).await,
            Self::Scheduling => medsec_scheduling::migrate(db).await,
            Self::Billing => medsec_billing::migrate(db).await,
        }
    }
}

/// `selected`, or every service when none is named, without repeats.
pub fn resolve(selected: &[ServiceName]) -> Vec<ServiceName> {
    let wanted = if selected.is_empty() {
        &ServiceName::ALL[..]
    } else {
        selected
    };
    ServiceName::ALL
        .into_iter()
        .filter(|name| wanted.contains(name))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(#[source] sea_orm::DbErr),
    #[error("cannot authenticate callers: {0}")]
    Auth(#[from] medsec_platform::auth::AuthSetupError),
    #[error("cannot migrate {service:?}: {source}")]
    Migration {
        service: ServiceName,
        source: sea_orm::DbErr,
    },
    #[error("cannot grant the runtime role its privileges: {0}")]
    Grant(#[from] medsec_platform::audit::GrantError),
    #[error(transparent)]
    Serve(#[from] medsec_platform::server::ServeError),
}

/// Applies the pending migrations of `services`.
pub async fn migrate(db: &DatabaseConnection, services: &[ServiceName]) -> Result<(), StartError> {
    for &service in services {
        service
            .migrate(db)
            .await
            .map_err(|source| StartError::Migration { service, source })?;
        tracing::info!(?service, "migrations applied");
    }
    Ok(())
}

/// Migrates `services` as the tables' owner — connected with
/// `database.migration_url` when set, else `database.url` — and then grants
/// `database.runtime_role`, when set, the services' tables with only read
/// and append on the audit trail: what `medsec migrate` and a server's start
/// do. The owner's connection is closed when done.
pub async fn migrate_as_owner(
    settings: &DatabaseSettings,
    services: &[ServiceName],
) -> Result<(), StartError> {
    let owner = medsec_platform::db::connect(&settings.for_migrations())
        .await
        .map_err(StartError::Database)?;
    let migrated = migrate(&owner, services).await;
    let granted = match (&migrated, &settings.runtime_role) {
        (Ok(()), Some(role)) => medsec_platform::audit::grant_runtime_role(&owner, role)
            .await
            .map_err(StartError::from),
        _ => Ok(()),
    };
    owner.close().await.ok();
    migrated.and(granted)
}

/// The suite, connected, migrated and bound, ready to serve.
#[derive(Debug)]
pub struct Application {
    server: GrpcServer,
    services: Services,
    auth: AuthLayer,
    /// The selected services' request ids, purged as they expire while
    /// serving.
    purge: (DatabaseConnection, Vec<IdempotencyKeys>, Duration),
}

impl Application {
    /// Connects to the database, migrates (unless disabled), and binds the
    /// listener, so the port is known before serving starts.
    pub async fn build(settings: &Settings, selected: &[ServiceName]) -> Result<Self, StartError> {
        let selected = resolve(selected);
        if settings.database.migrate_on_start {
            migrate_as_owner(&settings.database, &selected).await?;
        }
        let db = medsec_platform::db::connect(&settings.database)
            .await
            .map_err(StartError::Database)?;
        let services = selected
            .iter()
            .fold(Services::new(), |services, name| match name {
                ServiceName::Records => {
                    services.with(medsec_records::service(db.clone(), settings), name.policy())
                }
                ServiceName::Scheduling => services.with(
                    medsec_scheduling::service(db.clone(), settings),
                    name.policy(),
                ),
                ServiceName::Billing => {
                    services.with(medsec_billing::service(db.clone(), settings), name.policy())
                }
            });
        let server = GrpcServer::bind(&settings.server).await?;
        let authenticator =
            medsec_platform::auth::authenticator(&settings.auth, server.local_addr(), &db).await?;
        let purge = (
            db.clone(),
            selected
                .iter()
                .map(|name| name.idempotency_keys())
                .collect(),
            settings.server.request_id_retention(),
        );
        let auth = AuthLayer::new(
            services.policy(settings.auth.open_reflection),
            authenticator,
            db,
        );
        Ok(Self {
            server,
            services,
            auth,
            purge,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        tracing::info!(services = ?self.services.names(), "medsec starting");
        let (db, keys, retention) = self.purge;
        let purge = tokio::spawn(idempotency::purge_expired(db, keys, retention));
        let served = self.server.serve(self.services, self.auth, shutdown).await;
        purge.abort();
        served?;
        Ok(())
    }
}
