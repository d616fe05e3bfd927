//! How the load generator calls the suite: a few HTTP/2 connections, each
//! call carrying a bearer token and a purpose of use like any client's.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use medsec_platform::Settings;
use medsec_platform::auth::dev_issuer::DevIssuer;
use medsec_platform::auth::{PURPOSE_HEADER, Purpose, Role};
use medsec_proto::billing::v1::billing_service_client::BillingServiceClient;
use medsec_proto::ceiling::v1::ceiling_service_client::CeilingServiceClient;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Who the load generator's development token names.
pub const SUBJECT: &str = "medsec.load";

/// A token from the development issuer whose key is kept in the database
/// `settings` name, for [`SUBJECT`] with every staff role, as `medsec token`
/// signs one; an error when `auth.issuer` is configured (tokens then come
/// from that issuer).
pub async fn dev_token(settings: &Settings, lifetime: Duration) -> anyhow::Result<String> {
    if let Some(issuer) = &settings.auth.issuer {
        anyhow::bail!(
            "tokens come from the configured issuer {issuer}: pass one with --token or \
             MEDSEC_TOKEN (the load generator signs for the development issuer only)"
        );
    }
    let db = medsec_platform::db::connect(&settings.database)
        .await
        .context("cannot open the database")?;
    let issuer = DevIssuer::open(&db).await;
    db.close().await.ok();
    let token = issuer?.mint(
        SUBJECT,
        &Role::STAFF,
        &settings.auth.audience,
        lifetime,
        None,
    )?;
    Ok(token)
}

/// The metadata every call carries: the bearer token and the purpose.
#[derive(Clone)]
pub(crate) struct Credentials {
    authorization: AsciiMetadataValue,
    purpose: AsciiMetadataValue,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub(crate) fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            authorization: format!("Bearer {}", token.trim())
                .parse()
                .context("the token is not printable ASCII")?,
            purpose: AsciiMetadataValue::from_static(Purpose::DirectCare.as_str()),
        })
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        metadata.insert(PURPOSE_HEADER, self.purpose.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Credentials>;

/// A client of each service over one connection.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    pub(crate) records: RecordsServiceClient<Authed>,
    pub(crate) scheduling: SchedulingServiceClient<Authed>,
    pub(crate) billing: BillingServiceClient<Authed>,
    pub(crate) ceiling: CeilingServiceClient<Authed>,
}

impl Clients {
    fn over(channel: Channel, credentials: &Credentials) -> Self {
        let authed = InterceptedService::new(channel, credentials.clone());
        Self {
            records: RecordsServiceClient::new(authed.clone()),
            scheduling: SchedulingServiceClient::new(authed.clone()),
            billing: BillingServiceClient::new(authed.clone()),
            ceiling: CeilingServiceClient::new(authed),
        }
    }
}

/// `connections` connections to `addr`, each with its clients; a call not
/// answered within `timeout` is given up (and counted as its error).
pub(crate) async fn connect(
    addr: SocketAddr,
    connections: usize,
    timeout: Duration,
    credentials: &Credentials,
) -> anyhow::Result<Vec<Clients>> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .tcp_nodelay(true);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        clients.push(Clients::over(channel, credentials));
    }
    Ok(clients)
}
