//! Load shedding in the server shell: beyond `server.max_in_flight` a call is
//! answered at once with RESOURCE_EXHAUSTED, while health checks are never
//! shed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use medsec_platform::Settings;
use medsec_platform::testing::{TestServer, call_raw};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn a_full_server_sheds_calls_and_still_answers_health() {
    let mut settings = Settings::defaults().unwrap().server;
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.shutdown_grace_millis = 0;
    settings.max_in_flight = 0;
    let server = TestServer::health_only(&settings).await;
    let channel = server.channel().await;
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health is never shed");
    let status = call_raw(
        channel,
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("limit of 0 calls"), "{status:?}");
    server.stop().await;
}
