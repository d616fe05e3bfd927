//! The whole suite running for one test: the binary's `Application` on a
//! test database, a channel carrying a token with every staff role, and the
//! development issuer to sign other callers' tokens.

use std::net::SocketAddr;

use medsec::{Application, ServiceName};
use medsec_platform::Settings;
use medsec_platform::auth::dev_issuer::DevIssuer;
use medsec_platform::testing::{AuthChannel, Caller, init_test_logging};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The suite's `Application` serving in the background until stopped.
pub(crate) struct Serving {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) handle: JoinHandle<()>,
}

/// Builds the application `settings` describe, with `services` (all when
/// empty), and serves it.
pub(crate) async fn serve(settings: &Settings, services: &[ServiceName]) -> Serving {
    init_test_logging();
    // The whole suite is served with CeilingService too, so that every RPC
    // the descriptor set names is served (the policy and fuzz tests).
    let mut settings = settings.clone();
    settings.server.ceiling |= services.is_empty();
    let app = Application::build(&settings, services)
        .await
        .expect("build");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    Serving {
        addr,
        stop: Some(stop),
        handle,
    }
}

impl Serving {
    /// Asks the server to stop, and waits until it has.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle.await.expect("server task");
    }
}

/// The development issuer of the database `settings` name.
pub(crate) async fn dev_issuer(settings: &Settings) -> DevIssuer {
    let db = medsec_platform::db::connect(&settings.database)
        .await
        .expect("connect to the database");
    let issuer = DevIssuer::open(&db).await.expect("the development issuer");
    db.close().await.ok();
    issuer
}

pub(crate) struct Suite {
    /// Carries a token with every staff role, reading for direct care.
    pub(crate) channel: AuthChannel,
    /// Carries no credentials.
    pub(crate) plain: Channel,
    pub(crate) issuer: DevIssuer,
    pub(crate) audience: String,
    pub(crate) server: Serving,
}

pub(crate) async fn start(settings: &Settings, services: &[ServiceName]) -> Suite {
    let server = serve(settings, services).await;
    let plain = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let issuer = dev_issuer(settings).await;
    let audience = settings.auth.audience.clone();
    Suite {
        channel: Caller::everyone().channel(&issuer, &audience, plain.clone()),
        plain,
        issuer,
        audience,
        server,
    }
}

impl Suite {
    /// A channel carrying `caller`'s token.
    pub(crate) fn channel_as(&self, caller: &Caller) -> AuthChannel {
        caller.channel(&self.issuer, &self.audience, self.plain.clone())
    }

    pub(crate) async fn health(&self, service: &str) -> Result<ServingStatus, tonic::Status> {
        let response = HealthClient::new(self.plain.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?;
        Ok(response.into_inner().status())
    }

    pub(crate) async fn stop(self) {
        self.server.stop().await;
    }
}
