//! The server shell with `[server.tls]`: a bad certificate setting stops the
//! start with the setting named, port 0 still binds a free port, and health
//! answers over TLS (it is open: no certificate or token needed).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use medsec_platform::Settings;
use medsec_platform::config::{ClientAuth, ServerSettings};
use medsec_platform::server::{GrpcServer, ServeError};
use medsec_platform::testing::TestServer;
use medsec_platform::testing::tls::{TestCa, client_tls, handshake, tls_channel};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

fn server_settings() -> ServerSettings {
    let mut settings = Settings::defaults().unwrap().server;
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.shutdown_grace_millis = 0;
    settings
}

#[tokio::test]
async fn bad_tls_settings_stop_the_start() {
    let ca = TestCa::new("server CA");
    let server = ca.server_cert();

    let mut settings = server_settings();
    let mut tls = ca.server_tls(&server, None, ClientAuth::Optional);
    tls.key_file = "/nonexistent/server.key".into();
    settings.tls = Some(tls);
    let error = GrpcServer::bind(&settings).await.unwrap_err();
    assert!(matches!(error, ServeError::TlsFile { .. }), "{error}");
    assert!(error.to_string().contains("server.tls.key_file"), "{error}");

    settings.tls = Some(ca.server_tls(&server, None, ClientAuth::Required));
    let error = GrpcServer::bind(&settings).await.unwrap_err();
    assert!(matches!(error, ServeError::ClientCaMissing), "{error}");

    // A key that is not the certificate's.
    let other = ca.server_cert_named("other");
    let mut tls = ca.server_tls(&server, None, ClientAuth::Optional);
    tls.key_file = other.key_file.clone();
    settings.tls = Some(tls);
    let error = GrpcServer::bind(&settings).await.unwrap_err();
    assert!(matches!(error, ServeError::Tls(_)), "{error}");

    // A client CA file with no certificate in it.
    let mut tls = ca.server_tls(&server, Some(&ca), ClientAuth::Optional);
    tls.client_ca_file = Some(server.key_file.clone());
    settings.tls = Some(tls);
    let error = GrpcServer::bind(&settings).await.unwrap_err();
    assert!(matches!(error, ServeError::Tls(_)), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_zero_serves_tls_and_health_is_open() {
    let ca = TestCa::new("server CA");
    let services = TestCa::new("services CA");
    let mut settings = server_settings();
    settings.tls = Some(ca.server_tls(&ca.server_cert(), Some(&services), ClientAuth::Optional));
    let server = TestServer::health_only(&settings).await;
    let addr = server.addr;
    assert_ne!(addr.port(), 0);

    let channel = tls_channel(addr, client_tls(&ca, None)).await.unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect("health over TLS without a client certificate");
    handshake(
        addr,
        &ca,
        Some(&services.service_cert("billing.medsec.internal")),
    )
    .await
    .expect("a services CA certificate completes the handshake");

    server.stop().await;
}
