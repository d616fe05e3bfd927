//! Traces and metrics reach an OTLP collector over TLS: the collector's
//! certificate is checked against `telemetry.otlp_ca_file`, and the
//! collector, asking for a client certificate, gets
//! `telemetry.otlp_cert_file`. Its own test binary, because it installs the
//! process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use medsec_platform::Settings;
use medsec_platform::testing::tls::TestCa;
use opentelemetry::global;
use tonic::transport::ServerTlsConfig;

use medsec_platform::testing::collector::Collector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_reach_a_tls_collector_with_a_client_certificate() {
    let collector_ca = TestCa::new("collector CA");
    let clients_ca = TestCa::new("telemetry clients CA");
    let exporter = clients_ca.client_cert("medsec-exporter", &["medsec.medsec.internal"], &[]);
    let collector = Collector::default();
    // Serving TLS, requiring a client certificate from the clients' CA.
    let tls = ServerTlsConfig::new()
        .identity(collector_ca.server_cert().identity())
        .client_ca_root(clients_ca.certificate());
    let addr = collector.start(Some(tls)).await;

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

    let spans: Vec<String> = collector.spans().into_iter().map(|s| s.name).collect();
    assert!(
        spans.iter().any(|s| s == "otlp-tls-probe"),
        "spans: {spans:?}"
    );
    let metrics = collector.metric_names();
    assert!(
        metrics.iter().any(|m| m == "otlp.tls.probe"),
        "metrics: {metrics:?}"
    );
    assert_eq!(collector.anonymous_exports(), 0);
}
