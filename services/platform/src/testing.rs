//! The one test harness of every service's API tests: a fresh database on
//! each backend, a real server on a random loopback port ([`start`]), the
//! checks of an error's details, and faults injected into PostgreSQL.
//!
//! PostgreSQL is real: `MEDSEC_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) names a server where a new
//! database is made for each test and dropped after it. An unreachable server
//! fails the test; nothing is skipped.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Once;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::auth::AuthLayer;
use crate::auth::dev_issuer::DevIssuer;
use crate::auth::layer::Authenticator;
use crate::config::{ServerSettings, Settings};
use crate::server::{GrpcServer, Services};

mod callers;
pub mod collector;
mod faults;
mod raw;
pub mod tls;

pub use callers::{AuthChannel, Caller, Credentials, authorised_channel, with_token};
pub use faults::{Fault, RETRYABLE_FAULTS, clear_fault, fault_then_retry, inject_fault};
pub use raw::{RawCodec, call_raw};

/// Where the admin connection for test databases points unless
/// `MEDSEC_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The two databases every API test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend:
/// `both_backends!(creates_a_patient);` expands to a module with a `sqlite`
/// and a `postgres` test, each calling `creates_a_patient(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$test($crate::testing::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$test($crate::testing::Backend::Postgres).await;
                }
            }
        )+
    };
}

/// A database made for one test, removed when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteFile(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("medsec-test-{id}.db"));
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    backend,
                    cleanup: Cleanup::SqliteFile(path),
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var("MEDSEC_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let name = format!("medsec_test_{id}");
                let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is unreachable at {admin_url} ({e}); the API tests need it: \
                         start it or set MEDSEC_TEST_DATABASE_URL"
                    )
                });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create the test database");
                admin.close().await.ok();
                Self {
                    url: with_database_name(&admin_url, &name),
                    backend,
                    cleanup: Cleanup::PostgresDatabase { admin_url, name },
                }
            }
        }
    }

    /// Settings for a server on this database, on a random loopback port.
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::defaults().expect("defaults parse");
        settings.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.server.shutdown_grace_millis = 50;
        settings.database.url = self.url.clone().into();
        settings.database.max_connections = 8;
        settings
    }

    pub async fn connect(&self) -> DatabaseConnection {
        crate::db::connect(&self.settings().database)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs outside any async context we can block on, so use
                // a small runtime of its own on another thread.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(async {
                        let admin = Database::connect(&admin_url).await.ok()?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await
                            .ok()?;
                        admin.close().await.ok()
                    })
                });
                let _ = dropped.join();
            }
        }
    }
}

fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = match base.rsplit_once('/') {
        Some((server, _)) if server.contains("://") && !server.ends_with('/') => server,
        _ => base.trim_end_matches('/'),
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// A server running in the background of a test.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and serves `services` behind the authorisation
    /// layer the settings describe (the development issuer, its key in `db`)
    /// until [`TestServer::stop`] or drop.
    pub async fn start(settings: &Settings, services: Services, db: &DatabaseConnection) -> Self {
        init_test_logging();
        let server = GrpcServer::bind(&settings.server).await.expect("bind");
        let authenticator = crate::auth::authenticator(&settings.auth, server.local_addr(), db)
            .await
            .expect("authenticator");
        let auth = AuthLayer::new(
            services.policy(settings.auth.open_reflection),
            authenticator,
            db.clone(),
        );
        Self::serve(server, services, auth)
    }

    /// Binds as `settings` say and serves health alone, accepting no
    /// credentials: the server shell with no service behind it.
    pub async fn health_only(settings: &ServerSettings) -> Self {
        let server = GrpcServer::bind(settings).await.expect("bind");
        let services = Services::new();
        // No call on patient data, so no trail to write to.
        let auth = AuthLayer::new(
            services.policy(false),
            Authenticator::refusing_all(),
            DatabaseConnection::default(),
        );
        Self::serve(server, services, auth)
    }

    fn serve(server: GrpcServer, services: Services, auth: AuthLayer) -> Self {
        let addr = server.local_addr();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.await;
            };
            server.serve(services, auth, stop).await.expect("serve");
        });
        Self {
            addr,
            shutdown: Some(shutdown),
            handle: Some(handle),
        }
    }

    /// A channel to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("valid uri")
            .connect()
            .await
            .expect("connect to the test server")
    }

    /// Asks the server to shut down, without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts the server down and waits until it has stopped.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// A service running for one test: its database (migrated), a connection
/// to it for checks behind the API, a channel for the service's client, and
/// the development issuer that signs the test callers' tokens.
#[derive(Debug)]
pub struct Running {
    pub db: DatabaseConnection,
    /// A channel whose calls carry no credentials.
    pub channel: Channel,
    pub backend: Backend,
    pub issuer: DevIssuer,
    pub audience: String,
    pub server: TestServer,
    pub database: TestDatabase,
}

impl Running {
    /// A channel whose calls carry `caller`'s token and purpose, as a real
    /// client's would.
    pub fn channel_as(&self, caller: &Caller) -> AuthChannel {
        caller.channel(&self.issuer, &self.audience, self.channel.clone())
    }

    /// A channel for a caller holding every staff role, reading patient data
    /// for direct care: what the API tests of behaviour (not of
    /// authorisation) call as.
    pub fn authorised_channel(&self) -> AuthChannel {
        self.channel_as(&Caller::everyone())
    }
}

/// Starts the services `routes` makes on a fresh database of `backend`,
/// migrated by `migrate`, on a random loopback port.
pub async fn start(
    backend: Backend,
    migrate: impl AsyncFnOnce(&DatabaseConnection) -> Result<(), DbErr>,
    routes: impl FnOnce(DatabaseConnection, &Settings) -> Services,
) -> Running {
    let database = TestDatabase::create(backend).await;
    let settings = database.settings();
    start_with(database, settings, migrate, routes).await
}

/// As [`start`], on a given database with adjusted settings.
pub async fn start_with(
    database: TestDatabase,
    settings: Settings,
    migrate: impl AsyncFnOnce(&DatabaseConnection) -> Result<(), DbErr>,
    routes: impl FnOnce(DatabaseConnection, &Settings) -> Services,
) -> Running {
    let db = database.connect().await;
    migrate(&db).await.expect("migrate");
    let server = TestServer::start(&settings, routes(db.clone(), &settings), &db).await;
    let channel = server.channel().await;
    let issuer = DevIssuer::open(&db).await.expect("the development issuer");
    Running {
        db,
        channel,
        backend: database.backend,
        issuer,
        audience: settings.auth.audience.clone(),
        server,
        database,
    }
}

/// The bad fields an INVALID_ARGUMENT status names, in order.
pub fn violated_fields(status: &Status) -> Vec<String> {
    field_violations(status)
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// What an INVALID_ARGUMENT status says of `field`.
pub fn violation(status: &Status, field: &str) -> String {
    field_violations(status)
        .into_iter()
        .find(|violation| violation.field == field)
        .unwrap_or_else(|| panic!("no violation of {field} in {status:?}"))
        .description
}

/// The field violations of an INVALID_ARGUMENT status's details.
fn field_violations(status: &Status) -> Vec<tonic_types::FieldViolation> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations
}

/// The type of a FAILED_PRECONDITION status's violation (`STATE`, `OVERLAP`…).
pub fn precondition_type(status: &Status) -> String {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    status
        .get_details_precondition_failure()
        .expect("precondition failure details")
        .violations
        .into_iter()
        .next()
        .expect("a violation")
        .r#type
}

/// Every event raised in `db` so far, as written to the outbox, in order;
/// each row's columns checked against its envelope.
pub async fn raised_events(db: &DatabaseConnection) -> Vec<crate::events::pb::Envelope> {
    use crate::events::entities::outbox;
    use prost::Message as _;
    use sea_orm::{EntityTrait as _, QueryOrder as _};
    let rows = outbox::Entity::find()
        .order_by_asc(outbox::Column::Seq)
        .all(db)
        .await
        .expect("read the outbox");
    rows.into_iter()
        .map(|row| {
            let envelope =
                crate::events::pb::Envelope::decode(row.envelope.as_slice()).expect("an envelope");
            assert_eq!(row.id.to_string(), envelope.id);
            assert_eq!(row.kind, envelope.r#type);
            assert_eq!(row.subject, envelope.subject);
            assert_eq!(format!("/medsec/{}", row.source), envelope.source);
            envelope
        })
        .collect()
}

/// Logs appear in tests only with `TEST_LOG=1`.
pub fn init_test_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "debug,sqlx=warn,h2=info",
                ))
                .with_test_writer()
                .try_init();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::with_database_name;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database_name("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database_name("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(
            with_database_name("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
    }
}
