//! Logs, traces and metrics: a `tracing` subscriber with an env filter and
//! text or JSON output, and, when an OTLP endpoint is configured, spans and
//! metrics exported over OTLP/gRPC (TLS for an `https` endpoint, with the
//! collector's CA and a client certificate when configured). W3C trace
//! context is the propagation format, so a caller's trace continues through
//! medsec.

use std::path::Path;

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, TelemetrySettings};

/// Keeps the exporters alive; flushes them when dropped.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(Err(error)) = self.tracer_provider.take().map(|p| p.shutdown()) {
            tracing::warn!(%error, "trace exporter did not shut down cleanly");
        }
        if let Some(Err(error)) = self.meter_provider.take().map(|p| p.shutdown()) {
            tracing::warn!(%error, "metric exporter did not shut down cleanly");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("cannot read {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(&'static str),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber and, when configured, the OTLP exporters.
/// Call once, early in `main`, inside the Tokio runtime.
pub fn init(settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives)?,
        _ => EnvFilter::try_new(&settings.log_filter)?,
    };
    // Colour only for a person at a terminal, never into a file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let fmt_layer = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_ansi(ansi).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };

    let mut guard = TelemetryGuard::default();
    // The standard OpenTelemetry variables, when set, win over the file.
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let endpoint =
        from_env("OTEL_EXPORTER_OTLP_ENDPOINT").or_else(|| settings.otlp_endpoint.clone());
    let service_name =
        from_env("OTEL_SERVICE_NAME").unwrap_or_else(|| settings.service_name.clone());
    let otel_layer = match &endpoint {
        Some(endpoint) => {
            let resource = Resource::builder()
                .with_service_name(service_name)
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build();
            let tls = otlp_tls(settings, endpoint)?;
            let mut spans = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone());
            if let Some(tls) = &tls {
                spans = spans.with_tls_config(tls.clone());
            }
            let spans = spans.build()?;
            let tracer_provider = SdkTracerProvider::builder()
                .with_batch_exporter(spans)
                .with_resource(resource.clone())
                .build();
            let mut metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone());
            if let Some(tls) = tls {
                metrics = metrics.with_tls_config(tls);
            }
            let metrics = metrics.build()?;
            let meter_provider = SdkMeterProvider::builder()
                .with_periodic_exporter(metrics)
                .with_resource(resource)
                .build();
            global::set_meter_provider(meter_provider.clone());
            global::set_tracer_provider(tracer_provider.clone());
            let tracer = tracer_provider.tracer("medsec");
            guard.tracer_provider = Some(tracer_provider);
            guard.meter_provider = Some(meter_provider);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
        None => None,
    };

    Registry::default()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    Ok(guard)
}

/// The TLS an `https` collector is reached with: its CA (or the public web
/// roots) and, when configured, a client certificate. TLS files named for a
/// plaintext endpoint are refused rather than ignored.
fn otlp_tls(
    settings: &TelemetrySettings,
    endpoint: &str,
) -> Result<Option<ClientTlsConfig>, TelemetryError> {
    let files_named = settings.otlp_ca_file.is_some()
        || settings.otlp_cert_file.is_some()
        || settings.otlp_key_file.is_some();
    if !endpoint.starts_with("https://") {
        return if files_named {
            Err(TelemetryError::Tls(
                "telemetry.otlp_ca_file, otlp_cert_file and otlp_key_file need an https \
                 telemetry.otlp_endpoint",
            ))
        } else {
            Ok(None)
        };
    }
    let tls = match &settings.otlp_ca_file {
        Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read_pem(
            "telemetry.otlp_ca_file",
            ca,
        )?)),
        None => ClientTlsConfig::new().with_webpki_roots(),
    };
    let tls = match (&settings.otlp_cert_file, &settings.otlp_key_file) {
        (Some(cert), Some(key)) => tls.identity(Identity::from_pem(
            read_pem("telemetry.otlp_cert_file", cert)?,
            read_pem("telemetry.otlp_key_file", key)?,
        )),
        (None, None) => tls,
        _ => {
            return Err(TelemetryError::Tls(
                "telemetry.otlp_cert_file and telemetry.otlp_key_file are set together or not at all",
            ));
        }
    };
    Ok(Some(tls))
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, TelemetryError> {
    std::fs::read(path).map_err(|source| TelemetryError::TlsFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Records `span`'s trace and span ids in its `trace_id` and `span_id`
/// fields (when it declares them), so log lines inside it carry them.
pub fn record_ids(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = span.context();
    let ids = context.span().span_context().clone();
    if ids.is_valid() {
        span.record("trace_id", ids.trace_id().to_string());
        span.record("span_id", ids.span_id().to_string());
    }
}

/// Puts the current span's W3C trace context on an outgoing call's
/// metadata, so the callee's spans join the caller's trace.
pub fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    struct Injector<'a>(&'a mut tonic::metadata::MetadataMap);
    impl opentelemetry::propagation::Injector for Injector<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                tonic::metadata::MetadataValue::try_from(value.as_str()),
            ) {
                self.0.insert(key, value);
            }
        }
    }
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut Injector(metadata));
    });
}

/// The suite's own instruments beside the RPC ones, named as the dashboards
/// in `deploy/grafana` read them. Each is made once, on first use, from the
/// global meter provider (a no-op until [`init`] installs an exporter).
pub mod metrics {
    use std::sync::LazyLock;

    use opentelemetry::KeyValue;
    use opentelemetry::global;
    use opentelemetry::metrics::{Gauge, Histogram};

    static OPTIMISER_DURATION: LazyLock<Histogram<f64>> = LazyLock::new(|| {
        global::meter("medsec")
            .f64_histogram("medsec.optimiser.duration")
            .with_unit("s")
            .with_description("wall time of one optimiser solve, by outcome")
            .with_boundaries(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ])
            .build()
    });
    static OUTBOX_PENDING: LazyLock<Gauge<u64>> = LazyLock::new(|| {
        global::meter("medsec")
            .u64_gauge("medsec.events.outbox.pending")
            .with_description("events raised but not yet relayed")
            .build()
    });
    static OUTBOX_LAG: LazyLock<Gauge<f64>> = LazyLock::new(|| {
        global::meter("medsec")
            .f64_gauge("medsec.events.outbox.lag")
            .with_unit("s")
            .with_description("age of the oldest event not yet relayed (0 when none)")
            .build()
    });
    static SPECIMENS_OVERDUE: LazyLock<Gauge<u64>> = LazyLock::new(|| {
        global::meter("medsec")
            .u64_gauge("medsec.records.specimens.overdue")
            .with_description("specimens sent for testing whose result is overdue")
            .build()
    });

    /// One optimiser solve: how long it took and whether it was proven
    /// optimal (`optimal`, `feasible`) or failed (`error`).
    pub fn optimiser_run(seconds: f64, status: &'static str) {
        OPTIMISER_DURATION.record(seconds, &[KeyValue::new("status", status)]);
    }

    /// The outbox as the relay last saw it.
    pub fn outbox(pending: u64, oldest_age_seconds: f64) {
        OUTBOX_PENDING.record(pending, &[]);
        OUTBOX_LAG.record(oldest_age_seconds, &[]);
    }

    /// Specimens overdue, as the last sweep counted them.
    pub fn specimens_overdue(count: u64) {
        SPECIMENS_OVERDUE.record(count, &[]);
    }
}
