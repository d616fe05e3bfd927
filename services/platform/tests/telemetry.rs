//! Traces and metrics leave through OTLP/gRPC: a fake collector on loopback
//! receives the server span of an RPC, parented on the caller's W3C trace
//! context, and the RPC duration metrics (the current name in seconds and
//! the older one); health checks are not traced. Its own test binary,
//! because it installs the process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use medsec_platform::Settings;
use medsec_platform::events::{self, EventsApi, pb};
use medsec_platform::server::Services;
use medsec_platform::testing::{Backend, TestServer};
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

    // A call of a service: traced.
    let running = medsec_platform::testing::start(
        Backend::Sqlite,
        async |db| {
            medsec_platform::audit::migrate(db).await?;
            events::migrate(db).await
        },
        |db, settings| {
            let (api, _closer) = EventsApi::new(db, &settings.events);
            Services::new().with(api.service(), &events::POLICY)
        },
    )
    .await;
    let mut request = Request::new(pb::WatchEventsRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let watch = pb::event_service_client::EventServiceClient::new(running.authorised_channel())
        .watch_events(request)
        .await
        .unwrap();
    drop(watch);
    running.server.stop().await;
    // Shutting the providers down flushes what they hold.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = collector.spans();
    assert!(
        spans.iter().all(|s| !s.name.starts_with("grpc.health")),
        "health checks are not traced"
    );
    let span = spans
        .iter()
        .find(|s| s.name == "medsec.events.v1.EventService/WatchEvents")
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
    for name in ["rpc.server.call.duration", "rpc.server.duration"] {
        assert!(
            metrics.iter().any(|m| m == name),
            "{name} among the metrics exported: {metrics:?}"
        );
    }
}
