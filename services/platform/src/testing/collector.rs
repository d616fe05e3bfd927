//! A fake OTLP/gRPC collector on loopback for telemetry tests: it keeps
//! the spans (with the `service.name` that exported them) and metric names
//! exported to it, and counts the exports that came without a client
//! certificate.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::ServerTlsConfig;
use tonic::{Request, Response, Status};

/// What the collector received.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    metrics: Arc<Mutex<Vec<String>>>,
    anonymous_exports: Arc<Mutex<usize>>,
}

impl Collector {
    /// Serves the collector on a loopback port, over TLS when `tls` is given.
    pub async fn start(&self, tls: Option<ServerTlsConfig>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("collector");
        let addr = listener.local_addr().expect("collector");
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls).expect("collector");
        }
        tokio::spawn(
            server
                .add_service(TraceServiceServer::new(self.clone()))
                .add_service(MetricsServiceServer::new(self.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        addr
    }

    pub fn spans(&self) -> Vec<Span> {
        self.exported().into_iter().map(|(_, span)| span).collect()
    }

    /// Every span with the `service.name` of the resource that exported it.
    pub fn exported(&self) -> Vec<(String, Span)> {
        self.spans.lock().expect("spans").clone()
    }

    pub fn metric_names(&self) -> Vec<String> {
        self.metrics.lock().expect("collector").clone()
    }

    /// Exports that came without a client certificate.
    pub fn anonymous_exports(&self) -> usize {
        *self.anonymous_exports.lock().expect("collector")
    }

    fn note_client<T>(&self, request: &Request<T>) {
        if request.peer_certs().is_none_or(|certs| certs.is_empty()) {
            *self.anonymous_exports.lock().expect("collector") += 1;
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
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| {
                let service = r
                    .resource
                    .iter()
                    .flat_map(|resource| &resource.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|value| match &value.value {
                        Some(Value::StringValue(name)) => Some(name.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                r.scope_spans
                    .into_iter()
                    .flat_map(|s| s.spans)
                    .map(move |span| (service.clone(), span))
            });
        self.spans.lock().expect("spans").extend(spans);
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
        self.metrics.lock().expect("collector").extend(names);
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}
