//! The whole suite running for one test: the binary's `Application` on a
//! test database, a channel carrying a token with every staff role, and the
//! development issuer to sign other callers' tokens.

use medsec::{Application, ServiceName};
use medsec_platform::Settings;
use medsec_platform::auth::dev_issuer::DevIssuer;
use medsec_platform::testing::{AuthChannel, Caller, init_test_logging, with_token};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

pub(crate) struct Suite {
    /// Carries a token with every staff role, reading for direct care.
    pub(crate) channel: AuthChannel,
    /// Carries no credentials.
    pub(crate) plain: Channel,
    pub(crate) issuer: DevIssuer,
    pub(crate) audience: String,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) handle: JoinHandle<()>,
}

pub(crate) async fn start(settings: &Settings, services: &[ServiceName]) -> Suite {
    init_test_logging();
    let app = Application::build(settings, services).await.expect("build");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    let plain = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let db = medsec_platform::db::connect(&settings.database)
        .await
        .expect("connect to the database");
    let issuer = DevIssuer::open(&db).await.expect("the development issuer");
    db.close().await.ok();
    let audience = settings.auth.audience.clone();
    Suite {
        channel: channel_for(&issuer, &audience, &plain, &Caller::everyone()),
        plain,
        issuer,
        audience,
        stop: Some(stop),
        handle,
    }
}

fn channel_for(
    issuer: &DevIssuer,
    audience: &str,
    plain: &Channel,
    caller: &Caller,
) -> AuthChannel {
    let token = issuer
        .mint(
            &caller.subject,
            &caller.roles,
            audience,
            std::time::Duration::from_secs(3600),
            None,
        )
        .expect("mint");
    with_token(plain.clone(), &token, caller)
}

impl Suite {
    /// A channel carrying `caller`'s token.
    pub(crate) fn channel_as(&self, caller: &Caller) -> AuthChannel {
        channel_for(&self.issuer, &self.audience, &self.plain, caller)
    }

    pub(crate) async fn health(&self, service: &str) -> Result<ServingStatus, tonic::Status> {
        let response = HealthClient::new(self.plain.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?;
        Ok(response.into_inner().status())
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle.await.expect("server task");
    }
}
