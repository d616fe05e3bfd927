//! Logs, traces and metrics: a `tracing` subscriber with an env filter and
//! text or JSON output, and, when an OTLP endpoint is configured, spans and
//! metrics exported over OTLP/gRPC. W3C trace context is the propagation
//! format, so a caller's trace continues through medsec.

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
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
    let fmt_layer = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };

    let mut guard = TelemetryGuard::default();
    let otel_layer = match &settings.otlp_endpoint {
        Some(endpoint) => {
            let resource = Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build();
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()?;
            let tracer_provider = SdkTracerProvider::builder()
                .with_batch_exporter(spans)
                .with_resource(resource.clone())
                .build();
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()?;
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
