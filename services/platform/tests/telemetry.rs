//! Traces and metrics leave through OTLP/gRPC: a fake collector on loopback
//! receives the server span of an RPC, parented on the caller's W3C trace
//! context, and the RPC duration metric. Its own test binary, because it
//! installs the process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use medsec_platform::Settings;
use medsec_platform::auth::AuthLayer;
use medsec_platform::auth::layer::Authenticator;
use medsec_platform::server::{GrpcServer, Services};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    metrics: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let names = request
            .into_inner()
            .resource_metrics
            .into_iter()
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
            .map(|m| m.name);
        self.metrics.lock().unwrap().extend(names);
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn start_collector(collector: Collector) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_spans_and_metrics_reach_the_collector() {
    let collector = Collector::default();
    let collector_addr = start_collector(collector.clone()).await;

    let mut settings = Settings::defaults().unwrap();
    settings.telemetry.otlp_endpoint = Some(format!("http://{collector_addr}"));
    settings.telemetry.service_name = "medsec-telemetry-test".into();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.server.shutdown_grace_millis = 0;
    let guard = medsec_platform::telemetry::init(&settings.telemetry).unwrap();

    let server = GrpcServer::bind(&settings.server).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let services = Services::new();
    // Health only: no call on patient data, so nothing for a trail.
    let auth = AuthLayer::new(
        services.policy(false),
        Authenticator::refusing_all(),
        sea_orm::DatabaseConnection::default(),
    );
    let serving = tokio::spawn(server.serve(services, auth, async move {
        let _ = stopped.await;
    }));

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
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

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    // Shutting the providers down flushes what they hold.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = collector.spans.lock().unwrap().clone();
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
    let metrics = collector.metrics.lock().unwrap().clone();
    assert!(
        metrics.iter().any(|m| m == "rpc.server.duration"),
        "metrics exported: {metrics:?}"
    );
}
