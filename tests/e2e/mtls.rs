//! Transport security through the whole suite: the server speaks TLS, a
//! service's client certificate from the configured CA makes it a service
//! principal (named by the certificate's DNS name), a certificate from any
//! other CA ends the handshake, a plaintext client gets nowhere, and staff
//! bearer tokens work over the same TLS listener without a certificate.

use std::net::SocketAddr;

use medsec_platform::auth::dev_issuer::DevIssuer;
use medsec_platform::auth::{PURPOSE_HEADER, Purpose, Role};
use medsec_platform::both_backends;
use medsec_platform::config::ClientAuth;
use medsec_platform::testing::tls::{Leaf, TestCa, client_tls, handshake, tls_channel};
use medsec_platform::testing::{AuthChannel, Backend, Caller, TestDatabase, with_token};
use medsec_proto::records::v1 as records;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::fixtures::{ada, registration};
use crate::harness::{Serving, dev_issuer, serve};

both_backends!(
    a_service_certificate_reaches_records_as_its_service_principal,
    a_client_certificate_from_another_ca_is_refused_at_the_handshake,
    a_required_client_certificate_keeps_out_callers_without_one,
    a_bearer_token_wins_over_the_connection_certificate,
);

/// The DNS name in the calling service's certificate.
const SCHEDULING: &str = "scheduling.medsec.internal";

/// The suite serving TLS with a certificate from `server_ca`, taking client
/// certificates from `services_ca`.
struct TlsSuite {
    server: Serving,
    server_ca: TestCa,
    services_ca: TestCa,
    issuer: DevIssuer,
    audience: String,
    _database: TestDatabase,
}

impl TlsSuite {
    async fn start(backend: Backend, client_auth: ClientAuth) -> Self {
        let database = TestDatabase::create(backend).await;
        let server_ca = TestCa::new("medsec test server CA");
        let services_ca = TestCa::new("medsec test services CA");
        let mut settings = database.settings();
        settings.server.tls =
            Some(server_ca.server_tls(&server_ca.server_cert(), Some(&services_ca), client_auth));
        Self {
            server: serve(&settings, &[]).await,
            server_ca,
            services_ca,
            issuer: dev_issuer(&settings).await,
            audience: settings.auth.audience.clone(),
            _database: database,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// A TLS channel presenting `client` (or no certificate).
    async fn connect(&self, client: Option<&Leaf>) -> Result<Channel, tonic::transport::Error> {
        tls_channel(self.addr(), client_tls(&self.server_ca, client)).await
    }

    /// A TLS channel with no client certificate, carrying `caller`'s token.
    async fn staff(&self, caller: &Caller) -> RecordsServiceClient<AuthChannel> {
        let channel = self.connect(None).await.expect("connect over TLS");
        self.client_as(caller, channel)
    }

    /// A records client over `channel`, carrying `caller`'s token.
    fn client_as(&self, caller: &Caller, channel: Channel) -> RecordsServiceClient<AuthChannel> {
        RecordsServiceClient::new(caller.channel(&self.issuer, &self.audience, channel))
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// A service's call metadata: no token, only the purpose of use.
type ServiceChannel = InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>;

fn with_purpose(mut request: Request<()>) -> Result<Request<()>, Status> {
    request.metadata_mut().insert(
        PURPOSE_HEADER,
        Purpose::DirectCare.as_str().parse().expect("ascii"),
    );
    Ok(request)
}

/// A records client over `channel` as a service authenticated by its
/// certificate calls.
fn as_service(channel: Channel) -> RecordsServiceClient<ServiceChannel> {
    RecordsServiceClient::new(InterceptedService::new(channel, with_purpose as _))
}

fn secretary() -> Caller {
    Caller::staff("s.jones", &[Role::Secretary])
}

fn auditor() -> Caller {
    Caller {
        purpose: Some(Purpose::Audit),
        ..Caller::staff("a.auditor", &[Role::Auditor])
    }
}

async fn register_patient(suite: &TlsSuite) -> String {
    suite
        .staff(&secretary())
        .await
        .create_patient(ada())
        .await
        .expect("a secretary's token works over TLS without a client certificate")
        .into_inner()
        .id
}

/// The patient's audit trail as (actor, role, action), read by an auditor
/// over the same TLS listener.
async fn trail(suite: &TlsSuite, patient_id: &str) -> Vec<(String, String, String)> {
    suite
        .staff(&auditor())
        .await
        .list_audit_events(records::ListAuditEventsRequest {
            patient_id: patient_id.to_owned(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("the auditor reads the trail")
        .into_inner()
        .events
        .into_iter()
        .map(|event| (event.actor, event.role, event.action))
        .collect()
}

fn get_patient(id: &str) -> records::GetPatientRequest {
    records::GetPatientRequest { id: id.to_owned() }
}

async fn a_service_certificate_reaches_records_as_its_service_principal(backend: Backend) {
    let suite = TlsSuite::start(backend, ClientAuth::Optional).await;
    let patient_id = register_patient(&suite).await;

    let scheduling = suite.services_ca.service_cert(SCHEDULING);
    let channel = suite
        .connect(Some(&scheduling))
        .await
        .expect("the services CA's certificate is accepted");
    let mut service = as_service(channel);
    let patient = service
        .get_patient(get_patient(&patient_id))
        .await
        .expect("GetPatient is allowed to services")
        .into_inner();
    assert_eq!(patient.id, patient_id);

    // CreatePatient is not a service's to call.
    let status = service
        .create_patient(registration(
            "401 023 2137",
            "Grace",
            "Hopper",
            "1906-12-09",
            "service-create",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let trail = trail(&suite, &patient_id).await;
    assert!(
        trail.contains(&(
            SCHEDULING.to_owned(),
            "service".to_owned(),
            "GetPatient".to_owned()
        )),
        "the service's read is audited as the service: {trail:?}"
    );
    suite.stop().await;
}

async fn a_client_certificate_from_another_ca_is_refused_at_the_handshake(backend: Backend) {
    let suite = TlsSuite::start(backend, ClientAuth::Optional).await;
    let patient_id = register_patient(&suite).await;
    let before = trail(&suite, &patient_id).await;

    // The same service name, signed by a CA the server does not trust: the
    // server's handshake ends with the alert, before HTTP/2 begins.
    let rogue_ca = TestCa::new("rogue CA");
    let rogue = rogue_ca.service_cert(SCHEDULING);
    let refused = handshake(suite.addr(), &suite.server_ca, Some(&rogue))
        .await
        .expect_err("a certificate from another CA must not get through");
    assert!(
        refused.contains("UnknownCA"),
        "refused by the TLS handshake: {refused}"
    );
    let scheduling = suite.services_ca.service_cert(SCHEDULING);
    handshake(suite.addr(), &suite.server_ca, Some(&scheduling))
        .await
        .expect("the services CA's certificate completes the handshake");
    handshake(suite.addr(), &suite.server_ca, None)
        .await
        .expect("no certificate is fine when it is optional");

    // Through a real gRPC client, the rogue's call fails too.
    let call = match suite.connect(Some(&rogue)).await {
        Ok(channel) => as_service(channel)
            .get_patient(get_patient(&patient_id))
            .await
            .map(|_| ()),
        Err(_) => Err(Status::unavailable("refused")),
    };
    assert!(call.is_err(), "the rogue's GetPatient got through");

    // A plaintext client cannot talk to the TLS listener either.
    let plaintext = match Channel::from_shared(format!("http://{}", suite.addr()))
        .unwrap()
        .connect()
        .await
    {
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map(|_| ()),
        Err(_) => Err(Status::unavailable("connection refused")),
    };
    assert!(plaintext.is_err(), "plaintext gRPC over a TLS listener");

    let reads = |trail: &[(String, String, String)]| {
        trail
            .iter()
            .filter(|(_, _, action)| action == "GetPatient")
            .count()
    };
    let after = trail(&suite, &patient_id).await;
    assert_eq!(
        reads(&after),
        reads(&before),
        "the rogue call never reached records: {after:?}"
    );
    suite.stop().await;
}

async fn a_required_client_certificate_keeps_out_callers_without_one(backend: Backend) {
    let suite = TlsSuite::start(backend, ClientAuth::Required).await;
    let without = handshake(suite.addr(), &suite.server_ca, None)
        .await
        .expect_err("no certificate, yet connected");
    assert!(without.contains("CertificateRequired"), "{without}");
    let rogue_ca = TestCa::new("rogue CA");
    let rogue = handshake(
        suite.addr(),
        &suite.server_ca,
        Some(&rogue_ca.service_cert(SCHEDULING)),
    )
    .await
    .expect_err("a rogue certificate, yet connected");
    assert!(rogue.contains("UnknownCA"), "{rogue}");

    // A staff client with a token but no certificate gets no further.
    let call = match suite.connect(None).await {
        Ok(channel) => suite
            .client_as(&secretary(), channel)
            .list_patients(records::ListPatientsRequest::default())
            .await
            .map(|_| ()),
        Err(_) => Err(Status::unavailable("refused")),
    };
    assert!(call.is_err(), "a token without a certificate got through");

    let channel = suite
        .connect(Some(&suite.services_ca.service_cert(SCHEDULING)))
        .await
        .expect("the services CA's certificate is accepted");
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect("health over mutual TLS");
    suite.stop().await;
}

async fn a_bearer_token_wins_over_the_connection_certificate(backend: Backend) {
    let suite = TlsSuite::start(backend, ClientAuth::Optional).await;
    let patient_id = register_patient(&suite).await;
    let channel = suite
        .connect(Some(&suite.services_ca.service_cert(SCHEDULING)))
        .await
        .expect("connect with the service's certificate");

    // A clinician's token on the service's connection: the call is the
    // clinician's, and audited as theirs.
    let clinician = Caller::staff("dr.khan", &[Role::Clinician]);
    suite
        .client_as(&clinician, channel.clone())
        .get_patient(get_patient(&patient_id))
        .await
        .expect("the clinician's token is used");
    let trail = trail(&suite, &patient_id).await;
    assert!(
        trail.contains(&(
            "dr.khan".to_owned(),
            "clinician".to_owned(),
            "GetPatient".to_owned()
        )),
        "{trail:?}"
    );
    assert!(
        !trail.iter().any(|(actor, _, _)| actor == SCHEDULING),
        "the certificate was not used: {trail:?}"
    );

    // A bad token is refused, not passed over for the certificate.
    let status = RecordsServiceClient::new(with_token(channel, "not-a-token", &clinician))
        .get_patient(get_patient(&patient_id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    suite.stop().await;
}
