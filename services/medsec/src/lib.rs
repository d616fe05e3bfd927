//! The medsec suite as one application: which services to run, on which
//! database, behind one gRPC listener.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod load;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use medsec_platform::Settings;
use medsec_platform::auth::AuthLayer;
use medsec_platform::auth::policy::{Policy, ServicePolicy};
use medsec_platform::ceiling::{self, CeilingApi};
use medsec_platform::config::{DatabaseSettings, EventsSettings};
use medsec_platform::events::{self, Consumer, EventRuntime, EventsApi};
use medsec_platform::idempotency::{self, IdempotencyKeys};
use medsec_platform::peers::{self, InProcessCaller, InProcessLayer};
use medsec_platform::server::{GrpcServer, Services};
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_scheduling::patients::Patients;
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

    /// The service's short name: the `source` of its events.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::Records => "records",
            Self::Scheduling => "scheduling",
            Self::Billing => "billing",
        }
    }

    /// The service's reactions to events.
    fn consumers(self, db: &DatabaseConnection, settings: &Settings) -> Vec<Arc<dyn Consumer>> {
        match self {
            Self::Records => Vec::new(),
            Self::Scheduling => medsec_scheduling::consumers(db, settings),
            Self::Billing => medsec_billing::consumers(settings),
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

/// Raises the overdue-specimen events now and then a minute, for as long
/// as the task runs.
async fn sweep_overdue_specimens(db: DatabaseConnection) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        loop {
            use medsec_records::store::specimens::{OVERDUE_BATCH, raise_overdue};
            match raise_overdue(&db, chrono::Utc::now()).await {
                Ok(raised) if raised >= OVERDUE_BATCH => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "could not raise overdue specimens; will retry");
                    break;
                }
            }
        }
    }
}

/// How scheduling asks records about patients: through records' server in
/// this process (behind its authorisation layer, as the scheduling
/// service), or over the network at `peers.records_url`; with neither, it
/// does not ask (and says so).
fn patients(
    db: &DatabaseConnection,
    settings: &Settings,
    selected: &[ServiceName],
    auth: &AuthLayer,
) -> Result<Patients, StartError> {
    use tower::Layer as _;
    if selected.contains(&ServiceName::Records) {
        let records = InProcessLayer(InProcessCaller("scheduling"))
            .layer(auth.layer(medsec_records::service(db.clone(), settings)));
        return Ok(Patients::through(
            RecordsServiceClient::new(records),
            &settings.peers,
        ));
    }
    match &settings.peers.records_url {
        Some(url) => Ok(Patients::through(
            RecordsServiceClient::new(peers::channel(url, &settings.peers)?),
            &settings.peers,
        )),
        None => {
            tracing::warn!(
                "records is not served here and peers.records_url is not set: scheduling \
                 books and refers patients without asking records whether they exist"
            );
            Ok(Patients::unchecked())
        }
    }
}

/// The suite's policy table: every service's rules, and the events'.
pub fn policies() -> Vec<&'static ServicePolicy> {
    ServiceName::ALL
        .into_iter()
        .map(ServiceName::policy)
        .chain([&events::POLICY, &medsec_platform::ceiling::POLICY])
        .collect()
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
    #[error("cannot make the ceiling's table: {0}")]
    Ceiling(#[source] sea_orm::DbErr),
    #[error("cannot grant the runtime role its privileges: {0}")]
    Grant(#[from] medsec_platform::audit::GrantError),
    #[error(transparent)]
    Events(#[from] events::StartError),
    #[error(transparent)]
    Peer(#[from] peers::PeerError),
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

/// Makes CeilingService's table, as the tables' owner; the grants of
/// [`migrate_as_owner`] that follow cover it.
async fn migrate_ceiling(settings: &DatabaseSettings) -> Result<(), StartError> {
    let owner = medsec_platform::db::connect(&settings.for_migrations())
        .await
        .map_err(StartError::Database)?;
    let migrated = ceiling::migrate(&owner).await;
    owner.close().await.ok();
    migrated.map_err(StartError::Ceiling)
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
    /// What starts the relay and the consumers when serving begins.
    events: EventsPlan,
    /// Ends the event watches when shutdown begins.
    watchers: events::Closer,
}

/// The events side of a process: its services' outbox rows to relay and
/// their reactions to feed.
struct EventsPlan {
    db: DatabaseConnection,
    settings: EventsSettings,
    sources: Vec<String>,
    consumers: Vec<Arc<dyn Consumer>>,
    records: bool,
}

impl std::fmt::Debug for EventsPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsPlan")
            .field("sources", &self.sources)
            .field("consumers", &self.consumers)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to the database, migrates (unless disabled), and binds the
    /// listener, so the port is known before serving starts.
    pub async fn build(settings: &Settings, selected: &[ServiceName]) -> Result<Self, StartError> {
        let selected = resolve(selected);
        if settings.server.ceiling {
            migrate_ceiling(&settings.database).await?;
        }
        if settings.database.migrate_on_start {
            migrate_as_owner(&settings.database, &selected).await?;
        }
        let db = medsec_platform::db::connect(&settings.database)
            .await
            .map_err(StartError::Database)?;
        let server = GrpcServer::bind(&settings.server).await?;
        let authenticator =
            medsec_platform::auth::authenticator(&settings.auth, server.local_addr(), &db).await?;
        let policies: Vec<&'static ServicePolicy> = selected
            .iter()
            .map(|name| name.policy())
            .chain([&events::POLICY])
            .chain(settings.server.ceiling.then_some(&ceiling::POLICY))
            .collect();
        let auth = AuthLayer::new(
            Policy::new(policies, settings.auth.open_reflection),
            authenticator,
            db.clone(),
        );
        let (events_api, watchers) = EventsApi::new(db.clone(), &settings.events);
        let mut services = Services::new().with(events_api.service(), &events::POLICY);
        if settings.server.ceiling {
            services = services.with(CeilingApi::new(db.clone()).service(), &ceiling::POLICY);
        }
        let services = selected.iter().try_fold(services, |services, name| {
            Ok::<_, StartError>(match name {
                ServiceName::Records => {
                    services.with(medsec_records::service(db.clone(), settings), name.policy())
                }
                ServiceName::Scheduling => services.with(
                    medsec_scheduling::service_asking(
                        db.clone(),
                        settings,
                        patients(&db, settings, &selected, &auth)?,
                    ),
                    name.policy(),
                ),
                ServiceName::Billing => {
                    services.with(medsec_billing::service(db.clone(), settings), name.policy())
                }
            })
        })?;
        let purge = (
            db.clone(),
            selected
                .iter()
                .map(|name| name.idempotency_keys())
                .collect(),
            settings.server.request_id_retention(),
        );
        let events = EventsPlan {
            db: db.clone(),
            settings: settings.events.clone(),
            sources: selected
                .iter()
                .map(|name| name.short_name().to_owned())
                .collect(),
            consumers: selected
                .iter()
                .flat_map(|name| name.consumers(&db, settings))
                .collect(),
            records: selected.contains(&ServiceName::Records),
        };
        if settings.events.nats_url.is_none() && selected.len() < ServiceName::ALL.len() {
            tracing::warn!(
                "events.nats_url is not set: events reach only the services of this process; \
                 set it when the suite's services run in separate processes"
            );
        }
        Ok(Self {
            server,
            services,
            auth,
            purge,
            events,
            watchers,
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
        let plan = self.events;
        let sweep = plan
            .records
            .then(|| tokio::spawn(sweep_overdue_specimens(plan.db.clone())));
        let mut events =
            EventRuntime::start(plan.db, &plan.settings, plan.sources, plan.consumers).await?;
        let watchers = self.watchers;
        let shutdown = async move {
            shutdown.await;
            watchers.close();
        };
        let served = self.server.serve(self.services, self.auth, shutdown).await;
        purge.abort();
        if let Some(sweep) = sweep {
            sweep.abort();
        }
        events.stop();
        served?;
        Ok(())
    }
}
