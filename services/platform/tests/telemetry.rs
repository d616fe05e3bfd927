//! Traces and metrics leave through OTLP/gRPC: a fake collector on loopback
//! receives the server span of an RPC, parented on the caller's W3C trace
//! context, and the RPC duration metric. Its own test binary, because it
//! installs the process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use medsec_platform::Settings;
use medsec_platform::testing::TestServer;
use tonic::Request;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use medsec_platform::testing::collector::Collector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_spans_and_metrics_reach_the_collector() {
    let collector = Collector::default();
    let collector_addr = collector.start(None).await;

    let mut settings = Settings::defaults().unwrap();
    settings.telemetry.otlp_endpoint = Some(format!("http://{collector_addr}"));
    settings.telemetry.service_name = "medsec-telemetry-test".into();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.shutdown_grace_millis = 0;
    let guard = medsec_platform::telemetry::init(&settings.telemetry).unwrap();

    let server = TestServer::health_only(&settings.server).await;
    let channel = server.channel().await;
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    HealthClient::new(channel).check(request).await.unwrap();

    server.stop().await;
    // Shutting the providers down flushes what they hold.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = collector.spans();
    let span = spans
        .iter()
        .find(|s| s.name == "grpc.health.v1.Health/Check")
        .unwrap_or_else(|| {
            panic!(
                "no server span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(&span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    let metrics = collector.metric_names();
    assert!(
        metrics.iter().any(|m| m == "rpc.server.duration"),
        "metrics exported: {metrics:?}"
    );
}
