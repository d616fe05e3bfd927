//! `medsec health`, the binary, probing a running suite as a container's
//! health check or an operator would: SERVING and exit 0 for the server
//! and each of its services; a service it does not serve, or a port where
//! nothing listens, exit 1 with why.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::net::SocketAddr;
use std::process::Output;

use medsec::{Application, ServiceName};
use medsec_platform::testing::{Backend, TestDatabase};

fn health(addr: SocketAddr, extra: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_medsec"))
        .args(["health", "--addr", &addr.to_string()])
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .expect("run medsec health")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_what_the_server_serves() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut settings = database.settings();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    let app = Application::build(&settings, &[ServiceName::Records])
        .await
        .unwrap();
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let probes = tokio::task::spawn_blocking(move || {
        [
            health(addr, &[]),
            health(addr, &["--service", "medsec.records.v1.RecordsService"]),
            health(addr, &["--service", "medsec.billing.v1.BillingService"]),
        ]
    })
    .await
    .unwrap();
    let [whole, records, billing] = probes;
    assert!(whole.status.success(), "{whole:?}");
    assert_eq!(text(&whole.stdout), "SERVING");
    assert!(records.status.success(), "{records:?}");
    assert_eq!(text(&records.stdout), "SERVING");
    assert_eq!(billing.status.code(), Some(1), "{billing:?}");
    assert!(
        text(&billing.stderr).contains("not registered"),
        "{billing:?}"
    );

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    // Nothing listens there now.
    let gone = tokio::task::spawn_blocking(move || health(addr, &["--timeout", "1"]))
        .await
        .unwrap();
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(
        text(&gone.stderr).starts_with(&format!("medsec health: {addr}: ")),
        "{gone:?}"
    );
}
