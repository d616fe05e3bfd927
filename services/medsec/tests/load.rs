//! `medsec load` against a real suite serving the ceiling, on SQLite and on
//! PostgreSQL: every workload, closed loop, with the ceiling measured in
//! the same run; one open-loop run at a fixed rate; and the binary itself
//! writing its report. A few seconds each, so the generator cannot rot.
//! And CeilingService itself: its row, its bound, its role.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use medsec::load::{self, Options, Pace, PhaseReport, Progress, Report, SeedSize, Workload};
use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, TestDatabase};

both_backends!(
    every_workload_runs_clean_beside_the_ceiling,
    the_ceiling_is_for_admins_and_refuses_a_long_note,
);

/// CeilingService through a real client: Insert stores its row, a note over
/// 64 characters is INVALID_ARGUMENT naming `note` and stores nothing, and
/// a secretary may not call it.
async fn the_ceiling_is_for_admins_and_refuses_a_long_note(backend: Backend) {
    use medsec_platform::auth::Role;
    use medsec_platform::auth::dev_issuer::DevIssuer;
    use medsec_platform::testing::{Caller, violated_fields};
    use medsec_proto::ceiling::v1 as pb;
    use medsec_proto::ceiling::v1::ceiling_service_client::CeilingServiceClient;
    use sea_orm::ConnectionTrait as _;

    let database = TestDatabase::create(backend).await;
    let mut settings = database.settings();
    settings.server.ceiling = true;
    let suite = common::Suite::start(&settings).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", suite.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let db = database.connect().await;
    let issuer = DevIssuer::open(&db).await.unwrap();
    let admin = Caller::staff("ceiling.admin", &[Role::Admin]);
    let mut ceiling = CeilingServiceClient::new(admin.channel(&issuer, "medsec", channel.clone()));
    let rows = async || {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM ceiling_rows",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };

    ceiling.ping(pb::PingRequest {}).await.unwrap();
    let inserted = ceiling
        .insert(pb::InsertRequest {
            note: "load".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(uuid::Uuid::parse_str(&inserted.id).is_ok(), "{inserted:?}");
    assert_eq!(rows().await, 1);

    let status = ceiling
        .insert(pb::InsertRequest {
            note: "x".repeat(65),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["note"]);
    assert_eq!(rows().await, 1, "a refused insert stores nothing");

    let secretary = Caller::staff("s.jones", &[Role::Secretary]);
    let mut as_secretary = CeilingServiceClient::new(secretary.channel(&issuer, "medsec", channel));
    let status = as_secretary.ping(pb::PingRequest {}).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    db.close().await.ok();
    suite.stop().await;
}

/// Answers a busy clinic gives by design, never errors.
const CONTENTION: [&str; 3] = ["FAILED_PRECONDITION", "ABORTED", "ALREADY_EXISTS"];

/// The RPCs each workload must have issued in a second or so.
fn expected_rpcs(workload: &str) -> &'static [&'static str] {
    match workload {
        "booking" => &["ListSlots", "BookAppointment"],
        "records" => &["CreatePatient", "GetPatientSummary", "ListPatients"],
        "billing" => &[
            "CreateCharge",
            "CreateInvoice",
            "IssueInvoice",
            "RecordPayment",
        ],
        "mixed" => &[
            "GetDiary",
            "ListPatients",
            "GetPatient",
            "ListSlots",
            "BookAppointment",
            "CreatePatient",
            "CreateCharge",
        ],
        "diary-read" => &["GetDiary"],
        "ping" => &["Ping"],
        "insert" => &["Insert"],
        other => panic!("no expectations for {other}"),
    }
}

/// Every expected RPC was made, nothing failed but contention, and each
/// RPC's percentiles are in order.
fn assert_clean(phase: &PhaseReport) {
    let workload = &phase.workload;
    assert!(phase.steps.count > 0, "{workload}: no steps");
    assert_eq!(phase.dropped, 0, "{workload}: steps dropped");
    assert!(
        phase.steps.errors.is_empty(),
        "{workload}: {:?}",
        phase.steps
    );
    let issued: BTreeSet<&str> = phase.by_rpc.iter().map(|rpc| rpc.name.as_str()).collect();
    for rpc in expected_rpcs(workload) {
        assert!(issued.contains(rpc), "{workload}: no {rpc} in {issued:?}");
    }
    for rpc in phase.by_rpc.iter().chain([&phase.steps]) {
        let name = format!("{workload}/{}", rpc.name);
        assert!(rpc.count > 0, "{name}");
        assert!(rpc.errors.is_empty(), "{name}: errors {:?}", rpc.errors);
        for code in rpc.contention.keys() {
            assert!(CONTENTION.contains(&code.as_str()), "{name}: {code}");
        }
        let l = &rpc.latency;
        assert!(l.p50_ms > 0.0, "{name}: {l:?}");
        assert!(
            l.p50_ms <= l.p90_ms && l.p90_ms <= l.p99_ms && l.p99_ms <= l.p999_ms,
            "{name}: {l:?}"
        );
        assert!(l.p999_ms <= l.max_ms * 1.001 + 0.001, "{name}: {l:?}");
    }
    assert_eq!(phase.rpc_errors, 0, "{workload}");
    assert!(phase.rpcs_per_second > 0.0, "{workload}");
}

fn options(addr: std::net::SocketAddr, token: &str, backend: Backend) -> Options {
    let mut options = Options::new(addr, token);
    options.seed = SeedSize {
        clinicians: 2,
        weeks: 2,
        patients: 40,
    };
    options.database = Some(format!("{backend:?}").to_lowercase());
    options.timeout = Duration::from_secs(10);
    options
}

async fn every_workload_runs_clean_beside_the_ceiling(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut settings = database.settings();
    settings.server.ceiling = true;
    let suite = common::Suite::start(&settings).await;
    let token = load::dev_token(&settings, Duration::from_secs(600))
        .await
        .unwrap();

    // Closed loop: every workload after one seed, with the ceiling.
    let mut closed = options(suite.addr, &token, backend);
    closed.workloads = Workload::CLINIC.to_vec();
    closed.pace = Pace::Concurrency(4);
    closed.duration = Duration::from_millis(1200);
    closed.warmup = Duration::from_millis(200);
    closed.ceiling = true;
    let report = load::run(closed, Progress::Silent).await.unwrap();
    eprintln!("{}", report.to_markdown());

    let seed = report.seed.as_ref().expect("a clinic was seeded");
    assert_eq!(
        (seed.clinicians, seed.patients, seed.referrals),
        (2, 40, 40)
    );
    assert_eq!(
        seed.slots,
        2 * 10 * 24,
        "two weeks of weekdays, 24 slots a day"
    );
    let ceiling = report.ceiling.as_ref().expect("the ceiling was measured");
    assert_clean(&ceiling.ping);
    assert_clean(&ceiling.insert);
    let names: Vec<&str> = report
        .workloads
        .iter()
        .map(|w| w.workload.as_str())
        .collect();
    assert_eq!(
        names,
        ["booking", "records", "billing", "mixed", "diary-read"]
    );
    for phase in &report.workloads {
        assert_clean(phase);
        let of_ping = phase
            .fraction_of_ping
            .expect("a fraction of the ping ceiling");
        let of_insert = phase
            .fraction_of_insert
            .expect("a fraction of the insert ceiling");
        assert!(of_ping > 0.0 && of_insert > 0.0, "{phase:?}");
    }
    let booking = &report.workloads[0];
    assert!(
        booking.rpc("BookAppointment").unwrap().ok > 0,
        "{booking:?}"
    );

    // The report as files: the JSON reads back, the Markdown has the tables.
    let dir = std::env::temp_dir().join(format!("medsec-load-{}", uuid::Uuid::now_v7()));
    let (json, markdown) = report.write(&dir.join("report")).unwrap();
    let parsed: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(parsed.run_id, report.run_id);
    assert_eq!(parsed.workloads.len(), 5);
    assert_eq!(
        parsed.workloads[1].rpc("CreatePatient").unwrap().count,
        report.workloads[1].rpc("CreatePatient").unwrap().count
    );
    let markdown = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        markdown.contains("| rpc | count | per s | p50 ms |"),
        "{markdown}"
    );
    assert!(markdown.contains("| BookAppointment |"), "{markdown}");
    assert!(markdown.contains("## Summary"), "{markdown}");

    // Open loop: steps scheduled at a fixed rate, timed from their schedule.
    let mut open = options(suite.addr, &token, backend);
    open.workloads = vec![Workload::Mixed];
    open.pace = Pace::Rate {
        per_second: 80.0,
        max_in_flight: 64,
    };
    open.duration = Duration::from_millis(1500);
    open.warmup = Duration::ZERO;
    let report = load::run(open, Progress::Silent).await.unwrap();
    let phase = &report.workloads[0];
    assert_clean(phase);
    // 80/s for 1.5 s is 120 steps, every one sent.
    assert!(
        (110..=121).contains(&phase.steps.count),
        "{} steps",
        phase.steps.count
    );
    assert!(report.ceiling.is_none());
    assert_eq!(report.options.rate_per_second, Some(80.0));

    if backend == Backend::Sqlite {
        the_binary_writes_its_report(&suite, &database).await;
    }
    suite.stop().await;
    std::fs::remove_dir_all(dir).ok();
}

/// `medsec load` itself, minting its token from the database's
/// development issuer, for a second: exit 0, both report files, and no
/// live line when stderr is not a terminal.
async fn the_binary_writes_its_report(suite: &common::Suite, database: &TestDatabase) {
    let dir = std::env::temp_dir().join(format!("medsec-load-bin-{}", uuid::Uuid::now_v7()));
    let path = dir.join("run");
    let args: Vec<String> = [
        "load",
        "--addr",
        &suite.addr.to_string(),
        "--database",
        &database.url,
        "--workload",
        "diary-read,booking",
        "--concurrency",
        "2",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--clinicians",
        "1",
        "--weeks",
        "1",
        "--patients",
        "5",
        "--report",
        path.to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_medsec"))
            .args(&args)
            .env_remove("MEDSEC_TOKEN")
            .env_remove("RUST_LOG")
            .output()
            .expect("run medsec load")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("| GetDiary |"), "{stdout}");
    assert!(!stderr.contains("req/s"), "{stderr}");
    let json = std::fs::read_to_string(dir.join("run.json")).unwrap();
    let report: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(report.workloads.len(), 2);
    assert_eq!(report.database.as_deref(), Some("sqlite"));
    assert!(dir.join("run.md").is_file());
    std::fs::remove_dir_all(dir).ok();
}
