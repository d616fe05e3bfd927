//! The gRPC server shell every medsec process runs: standard health with a
//! status per service, reflection (v1 and v1alpha), a span and a duration
//! metric per RPC with the caller's W3C trace context as parent, a request
//! deadline, message size limits, TLS (with client certificates for
//! services) when configured, and graceful shutdown that first reports
//! NOT_SERVING and then drains in-flight requests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry::metrics::Histogram;
use opentelemetry::propagation::Extractor;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::auth::AuthLayer;
use crate::auth::policy::{Policy, ServicePolicy};
use crate::config::{ClientAuth, ServerSettings, ServerTlsSettings};
use crate::shed::ShedLayer;

/// gRPC service name of the standard health service.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Errors that stop a server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "server.tls.client_auth = \"required\" needs server.tls.client_ca_file, the CA of \
         the services' client certificates"
    )]
    ClientCaMissing,
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The application services one process serves, with their gRPC names for
/// health and reflection and their rows of the policy table.
#[derive(Debug, Default)]
pub struct Services {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    policies: Vec<&'static ServicePolicy>,
}

impl Services {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a generated tonic server with its policy: no service is served
    /// without one.
    pub fn with<S>(mut self, service: S, policy: &'static ServicePolicy) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.policies.push(policy);
        self.routes.add_service(service);
        self
    }

    /// The policy table of the services added so far; reflection needs a
    /// role unless `open_reflection`.
    pub fn policy(&self, open_reflection: bool) -> Policy {
        Policy::new(self.policies.iter().copied(), open_reflection)
    }

    /// The gRPC names of the services added so far.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// A server bound to its address and ready to serve. Binding happens before
/// serving, so port 0 works and callers learn the real port; the TLS
/// certificates are read then too, so a bad one stops the start.
#[derive(Debug)]
pub struct GrpcServer {
    listener: TcpListener,
    settings: ServerSettings,
    server: Server,
}

impl GrpcServer {
    pub async fn bind(settings: &ServerSettings) -> Result<Self, ServeError> {
        match &settings.page_token_key {
            Some(key) => crate::pagination::set_token_key(
                secrecy::ExposeSecret::expose_secret(key).as_bytes(),
            ),
            None if !settings.listen.ip().is_loopback() => tracing::warn!(
                "no server.page_token_key: page tokens resume only on the replica that issued them"
            ),
            None => {}
        }
        let secs = std::time::Duration::from_secs;
        let mut server = Server::builder()
            .timeout(settings.request_timeout())
            .max_concurrent_streams(settings.max_concurrent_streams)
            .http2_keepalive_interval(Some(secs(settings.http2_keepalive_interval_secs)))
            .http2_keepalive_timeout(Some(secs(settings.http2_keepalive_timeout_secs)))
            .max_connection_age(secs(settings.max_connection_age_secs))
            .max_connection_age_grace(secs(settings.max_connection_age_grace_secs));
        if let Some(tls) = &settings.tls {
            server = server
                .tls_config(tls_config(tls)?)
                .map_err(|error| ServeError::Tls(error_chain(&error)))?;
        }
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        Ok(Self {
            listener,
            settings: settings.clone(),
            server,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always knows its address.
        self.listener.local_addr().unwrap_or(self.settings.listen)
    }

    /// Serves `services` behind `auth` until `shutdown` completes. Health
    /// then reports NOT_SERVING for every service, the grace period passes so
    /// load balancers stop routing here, and in-flight requests are drained
    /// for at most `server.drain_timeout_secs`.
    pub async fn serve(
        self,
        services: Services,
        auth: AuthLayer,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Services {
            mut routes, names, ..
        } = services;
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        for name in &names {
            reporter
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }

        routes
            .add_service(health)
            .add_service(reflection(&names).build_v1()?)
            .add_service(reflection(&names).build_v1alpha()?);

        let grace = self.settings.shutdown_grace();
        let drain_timeout = std::time::Duration::from_secs(self.settings.drain_timeout_secs);
        let (draining, drain_started) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: reporting not serving");
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for name in &names {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            tokio::time::sleep(grace).await;
            tracing::info!("draining in-flight requests");
            let _ = draining.send(());
        };

        let addr = self.local_addr();
        match &self.settings.tls {
            Some(tls) => tracing::info!(
                %addr,
                client_certificates = match (&tls.client_ca_file, tls.client_auth) {
                    (None, _) => "not asked for",
                    (Some(_), ClientAuth::Optional) => "optional",
                    (Some(_), ClientAuth::Required) => "required",
                },
                "serving gRPC over TLS"
            ),
            None if addr.ip().is_loopback() => tracing::info!(%addr, "serving gRPC"),
            None => tracing::warn!(
                %addr,
                "serving plaintext gRPC off loopback: configure server.tls"
            ),
        }
        // A listener of our own gets none of the builder's TCP settings:
        // they are set here. Without TCP_NODELAY a response written in two
        // pieces waits ~40 ms for the client's delayed ACK.
        let incoming = TcpIncoming::from(self.listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(std::time::Duration::from_secs(
                self.settings.tcp_keepalive_secs,
            )));
        let serving = self
            .server
            .layer(RpcTelemetryLayer {
                trace_probes: self.settings.trace_health_and_reflection,
            })
            .layer(ShedLayer::new(self.settings.max_in_flight))
            .layer(auth)
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming, shutdown);
        // The drain is bounded: calls still running when it times out are
        // cut off (their clients see the connection close), so a stuck call
        // cannot keep a replica from stopping.
        let drain_overrun = async move {
            if drain_started.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(drain_timeout).await;
        };
        tokio::select! {
            served = serving => served?,
            () = drain_overrun => {
                tracing::warn!(?drain_timeout, "drain timed out: cutting off calls still in flight");
            }
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// tonic's TLS configuration from the settings' PEM files.
fn tls_config(tls: &ServerTlsSettings) -> Result<ServerTlsConfig, ServeError> {
    let cert = read_pem("server.tls.cert_file", &tls.cert_file)?;
    let key = read_pem("server.tls.key_file", &tls.key_file)?;
    let mut config = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .timeout(tls.handshake_timeout());
    match (&tls.client_ca_file, tls.client_auth) {
        (Some(ca), client_auth) => {
            let ca = read_pem("server.tls.client_ca_file", ca)?;
            config = config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(client_auth == ClientAuth::Optional);
        }
        (None, ClientAuth::Required) => return Err(ServeError::ClientCaMissing),
        (None, ClientAuth::Optional) => {}
    }
    Ok(config)
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::TlsFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// An error and its causes on one line: tonic's transport errors say only
/// "transport error" themselves.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reflection over exactly the services this process serves, and the
/// `google.rpc` types their errors carry.
fn reflection<'a>(names: &[&'a str]) -> tonic_reflection::server::Builder<'a> {
    names.iter().fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(medsec_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc's error details, so grpcurl and buf curl decode them.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(HEALTH_SERVICE),
        |builder, name| builder.with_service_name(*name),
    )
}

/// Gives an error status raised without `google.rpc` details (by tonic, the
/// load shedder or the auth layer) a `google.rpc.ErrorInfo` naming the
/// service, so every error a client sees carries one (AIP-193). Statuses
/// from handlers already carry theirs, with a more specific reason.
fn add_error_info(headers: &mut http::HeaderMap, grpc_service: &str) {
    if headers.contains_key("grpc-status-details-bin") {
        return;
    }
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    let details = tonic_types::ErrorDetails::with_error_info(
        crate::error::reason_of(status.code()),
        crate::error::domain_of(grpc_service),
        std::collections::HashMap::new(),
    );
    let status = <tonic::Status as tonic_types::StatusExt>::with_error_details(
        status.code(),
        status.message(),
        details,
    );
    if let Err(error) = status.add_header(headers) {
        tracing::warn!(%error, "cannot add error details to a status");
    }
}

/// Resolves when the process is asked to stop: SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Wraps every RPC in a server span (child of the caller's trace context,
/// its trace and span ids also recorded as fields, so JSON log lines carry
/// them) and records its duration and status code: `rpc.server.call.duration`
/// in seconds, as the current OpenTelemetry RPC conventions name it, and the
/// older `rpc.server.duration` in milliseconds while dashboards move over.
/// Health checks and reflection get no span unless `trace_probes`: probes
/// every few seconds would swamp the traces.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcTelemetryLayer {
    pub trace_probes: bool,
}

impl<S> tower::Layer<S> for RpcTelemetryLayer {
    type Service = RpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let meter = global::meter("medsec");
        let duration = meter
            .f64_histogram("rpc.server.call.duration")
            .with_unit("s")
            .with_description("duration of inbound RPCs")
            .build();
        let duration_ms = meter
            .f64_histogram("rpc.server.duration")
            .with_unit("ms")
            .with_description("duration of inbound RPCs (the older name, in milliseconds)")
            .build();
        RpcTelemetry {
            inner,
            duration,
            duration_ms,
            trace_probes: self.trace_probes,
        }
    }
}

/// The service made by [`RpcTelemetryLayer`].
#[derive(Clone)]
pub struct RpcTelemetry<S> {
    inner: S,
    duration: Histogram<f64>,
    duration_ms: Histogram<f64>,
    trace_probes: bool,
}

impl<S> std::fmt::Debug for RpcTelemetry<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcTelemetry").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RpcTelemetry<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", path));
        let (service, method) = (service.to_owned(), method.to_owned());
        let probe = service == HEALTH_SERVICE
            || crate::auth::policy::REFLECTION_SERVICES.contains(&service.as_str());
        let span = if probe && !self.trace_probes {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                "rpc",
                otel.name = %format_args!("{service}/{method}"),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                rpc.grpc.status_code = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            )
        };
        let parent = global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        // A span with no subscriber layer for OpenTelemetry cannot take a
        // parent; that only means traces are not exported.
        let _ = span.set_parent(parent);
        crate::telemetry::record_ids(&span);

        let started = Instant::now();
        let response = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let (duration, duration_ms) = (self.duration.clone(), self.duration_ms.clone());
        Box::pin(
            async move {
                let mut result = response.await;
                // Unary errors are trailers-only responses: the status is a
                // header. A response without one carries OK in its trailers.
                let code = match &mut result {
                    Ok(response) => {
                        let code = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|value| value.to_str().ok())
                            .and_then(|value| value.parse::<i32>().ok())
                            .unwrap_or(0);
                        if code != 0 {
                            add_error_info(response.headers_mut(), &service);
                        }
                        code
                    }
                    Err(_) => tonic::Code::Unknown as i32,
                };
                let span = tracing::Span::current();
                span.record("rpc.grpc.status_code", code);
                if is_server_error(code) {
                    span.record("otel.status_code", "ERROR");
                }
                let elapsed = started.elapsed().as_secs_f64();
                // An access log line per call (probes only when debugging).
                if probe {
                    tracing::debug!(code, elapsed_ms = elapsed * 1000.0, "rpc finished");
                } else {
                    tracing::info!(code, elapsed_ms = elapsed * 1000.0, "rpc finished");
                }
                let attributes = [
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", service),
                    KeyValue::new("rpc.method", method),
                    KeyValue::new("rpc.grpc.status_code", i64::from(code)),
                ];
                duration.record(elapsed, &attributes);
                duration_ms.record(elapsed * 1000.0, &attributes);
                result
            }
            .instrument(span),
        )
    }
}

/// Codes that mean the server failed, not the caller (OpenTelemetry's gRPC
/// conventions).
fn is_server_error(code: i32) -> bool {
    use tonic::Code;
    [
        Code::Unknown,
        Code::DeadlineExceeded,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
    ]
    .iter()
    .any(|c| *c as i32 == code)
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
