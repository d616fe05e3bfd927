//! Traces and metrics reach an OTLP collector over TLS: the collector's
//! certificate is checked against `telemetry.otlp_ca_file`, and the
//! collector, asking for a client certificate, gets
//! `telemetry.otlp_cert_file`. Its own test binary, because it installs the
//! process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use medsec_platform::Settings;
use medsec_platform::testing::tls::{Leaf, TestCa};
use opentelemetry::global;
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
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::ServerTlsConfig;
use tonic::{Request, Response, Status};

/// What the collector received, and whether each export came with a
/// client certificate.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<String>>>,
    metrics: Arc<Mutex<Vec<String>>>,
    anonymous_exports: Arc<Mutex<usize>>,
}

impl Collector {
    fn note_client<T>(&self, request: &Request<T>) {
        if request.peer_certs().is_none_or(|certs| certs.is_empty()) {
            *self.anonymous_exports.lock().unwrap() += 1;
        }
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.note_client(&request);
        let names = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .map(|s| s.name);
        self.spans.lock().unwrap().extend(names);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.note_client(&request);
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

/// A collector serving TLS with `server`, requiring a client certificate
/// from `clients`.
async fn start_collector(collector: Collector, server: &Leaf, clients: &TestCa) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ServerTlsConfig::new()
        .identity(server.identity())
        .client_ca_root(clients.certificate());
    tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_a_tls_collector_with_a_client_certificate() {
    let collector_ca = TestCa::new("collector CA");
    let clients_ca = TestCa::new("telemetry clients CA");
    let exporter = clients_ca.client_cert("medsec-exporter", &["medsec.medsec.internal"], &[]);
    let collector = Collector::default();
    let addr = start_collector(collector.clone(), &collector_ca.server_cert(), &clients_ca).await;

    let mut settings = Settings::defaults().unwrap().telemetry;
    settings.service_name = "medsec-otlp-tls-test".into();

    // TLS files for a plaintext endpoint, or half a client identity, are
    // refused rather than ignored (and nothing is installed).
    settings.otlp_endpoint = Some(format!("http://{addr}"));
    settings.otlp_ca_file = Some(collector_ca.cert_file.clone());
    let error = medsec_platform::telemetry::init(&settings).unwrap_err();
    assert!(error.to_string().contains("https"), "{error}");
    settings.otlp_endpoint = Some(format!("https://{addr}"));
    settings.otlp_cert_file = Some(exporter.cert_file.clone());
    let error = medsec_platform::telemetry::init(&settings).unwrap_err();
    assert!(error.to_string().contains("otlp_key_file"), "{error}");

    settings.otlp_key_file = Some(exporter.key_file.clone());
    let guard = medsec_platform::telemetry::init(&settings).unwrap();
    tracing::info_span!("otlp-tls-probe").in_scope(|| {});
    global::meter("medsec-test")
        .u64_counter("otlp.tls.probe")
        .build()
        .add(1, &[]);
    // Shutting the providers down flushes what they hold.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = collector.spans.lock().unwrap().clone();
    assert!(
        spans.iter().any(|s| s == "otlp-tls-probe"),
        "spans: {spans:?}"
    );
    let metrics = collector.metrics.lock().unwrap().clone();
    assert!(
        metrics.iter().any(|m| m == "otlp.tls.probe"),
        "metrics: {metrics:?}"
    );
    assert_eq!(*collector.anonymous_exports.lock().unwrap(), 0);
}
