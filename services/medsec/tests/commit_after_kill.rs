//! `medsec serve`, the binary, killed with SIGKILL half way through a
//! CommitProposal and started again on the same database (each backend):
//! the same CommitProposal books what was left, every allocation exactly
//! once and in its proposed slot, as an uninterrupted commit would; the run
//! lock of a ProposeAllocation killed with it blocks its specialty for no
//! longer than the configured lease; the audit trail is intact.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{Datelike as _, Days};
use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, TestDatabase};
use medsec_platform::time::{format_civil_date, today_in_london};
use medsec_proto::scheduling::v1 as pb;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

both_backends!(a_commit_killed_half_way_is_finished_by_its_retry_after_a_restart);

/// The run lock's lease, short so the test sees it lapse.
const LEASE: Duration = Duration::from_secs(3);
/// Waiting referrals: enough that the commit takes seconds, so the kill
/// lands in the middle of it.
const REFERRALS: usize = 600;
/// The whole test, however it goes.
const TEST_LIMIT: Duration = Duration::from_secs(300);
/// One RPC, or one wait for the server.
const CALL_LIMIT: Duration = Duration::from_secs(120);

async fn a_commit_killed_half_way_is_finished_by_its_retry_after_a_restart(backend: Backend) {
    tokio::time::timeout(TEST_LIMIT, scenario(backend))
        .await
        .expect("the test finished in time");
}

async fn scenario(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let site = Site::new(&database);
    let admin = site.token("admin", "c.setup");
    let manager = site.token("waiting_list_manager", "w.manager");

    let server = site.serve();
    let channel = site.ready().await;
    let mut setup = client(&channel, &admin);
    let mut scheduling = client(&channel, &manager);
    let (horizon_start, horizon_end) = clinic(&mut setup).await;
    waiting_list(&mut scheduling).await;
    let run = pb::ProposeAllocationRequest {
        specialty: "cardiology".into(),
        horizon_start,
        horizon_end,
    };
    let proposal = scheduling
        .propose_allocation(run.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        proposal.referrals_allocated as usize, REFERRALS,
        "{proposal:?}"
    );
    let proposed = allocations(&mut scheduling, &proposal.id).await;
    assert_eq!(proposed.len(), REFERRALS);

    // The commit starts; once it is under way, a second run of the specialty
    // starts too (again, should one slip by unseen), and while one holds
    // the specialty's lock the server is killed.
    let commit = pb::CommitProposalRequest {
        id: proposal.id.clone(),
    };
    let in_flight = tokio::spawn({
        let mut scheduling = scheduling.clone();
        let commit = commit.clone();
        async move { scheduling.commit_proposal(commit).await }
    });
    let db = database.connect().await;
    wait_for("the commit's first bookings", || async {
        appointments_in(&db).await >= REFERRALS / 10
    })
    .await;
    let second_run = loop {
        let second_run = tokio::spawn({
            let mut scheduling = scheduling.clone();
            let run = run.clone();
            async move { scheduling.propose_allocation(run).await }
        });
        wait_for("a second run to hold the lock or finish", || async {
            run_locks_in(&db).await > 0 || second_run.is_finished()
        })
        .await;
        if !second_run.is_finished() {
            break second_run;
        }
        assert!(
            !in_flight.is_finished(),
            "the commit finished before a second run took the lock: make the waiting list longer"
        );
    };
    server.kill();
    let killed_at = Instant::now();

    let at_kill = appointments_in(&db).await;
    assert!(
        at_kill < REFERRALS,
        "the commit finished before the kill: make the waiting list longer"
    );
    let interrupted = in_flight.await.unwrap();
    assert!(interrupted.is_err(), "{interrupted:?}");
    assert!(second_run.await.unwrap().is_err());
    let dead_locks = run_locks_in(&db).await;
    match backend {
        // The killed run's lease row is left behind, to lapse.
        Backend::Sqlite => assert_eq!(dead_locks, 1),
        // The kernel closed the killed process's sockets; the server ended
        // the lock session and its advisory locks with it.
        Backend::Postgres => {
            wait_for("the killed run's advisory lock to go", || async {
                run_locks_in(&db).await == 0
            })
            .await;
            assert!(killed_at.elapsed() < LEASE, "{:?}", killed_at.elapsed());
        }
    }

    let _server = site.serve();
    let channel = site.ready().await;
    let mut scheduling = client(&channel, &manager);
    // Counted now, not at the kill: a COMMIT the killed process had sent
    // may still have landed after it.
    let booked_before = appointments_in(&db).await;
    assert!((at_kill..REFERRALS).contains(&booked_before));

    // A new run of the specialty gets in within the lease of the last
    // renewal before the kill (plus SQLite's rounding to the second).
    let free_by = killed_at + LEASE + Duration::from_secs(1);
    let mut refused = 0;
    let rerun = loop {
        match scheduling.propose_allocation(run.clone()).await {
            Ok(rerun) => break rerun.into_inner(),
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(status.message().contains("being optimised"), "{status:?}");
                refused += 1;
            }
        }
        assert!(
            Instant::now() < free_by + Duration::from_secs(3),
            "the killed run's lock still blocks cardiology {:?} after the kill",
            killed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let blocked_for = killed_at.elapsed();
    assert!(rerun.referrals > 0, "{rerun:?}");
    eprintln!(
        "{backend:?}: {booked_before} of {REFERRALS} booked at the kill; a new run got in \
         {blocked_for:?} after it, refused {refused} times"
    );

    // The same request again: it books what was left.
    let retried = scheduling
        .commit_proposal(commit.clone())
        .await
        .expect("the retried commit succeeds")
        .into_inner();
    let committed = retried.proposal.clone().unwrap();
    assert_eq!(committed.status(), pb::ProposalStatus::Committed);
    assert_eq!(retried.booked as usize, REFERRALS - booked_before);
    assert_eq!(committed.booked as usize, REFERRALS);
    assert_eq!(committed.not_booked, 0);
    assert!(retried.not_booked.is_empty(), "{:?}", retried.not_booked);

    // What an uninterrupted commit gives: every allocation booked, in its
    // slot, once.
    let after = allocations(&mut scheduling, &proposal.id).await;
    assert!(
        after
            .iter()
            .all(|a| !a.appointment_id.is_empty() && a.not_booked_reason.is_empty()),
        "an allocation left open or refused"
    );
    let wanted: BTreeSet<(String, String)> = proposed
        .iter()
        .map(|a| (a.referral_id.clone(), a.slot_id.clone()))
        .collect();
    let booked = booked_appointments(&mut scheduling).await;
    assert_eq!(booked.len(), REFERRALS, "an appointment booked twice");
    assert!(
        booked
            .iter()
            .all(|a| a.status() == pb::AppointmentStatus::Booked)
    );
    let got: BTreeSet<(String, String)> = booked
        .iter()
        .map(|a| (a.referral_id.clone(), a.slot_id.clone()))
        .collect();
    assert_eq!(got, wanted);
    let by_appointment: BTreeSet<&str> = after.iter().map(|a| a.appointment_id.as_str()).collect();
    assert!(
        booked
            .iter()
            .all(|a| by_appointment.contains(a.id.as_str()))
    );
    let mut places: BTreeMap<&str, i32> = BTreeMap::new();
    for appointment in &booked {
        *places.entry(appointment.slot_id.as_str()).or_default() += 1;
    }
    for slot in slots(&mut scheduling).await {
        let taken = places.get(slot.id.as_str()).copied().unwrap_or(0);
        assert_eq!(slot.booked, taken, "{slot:?}");
        assert!(slot.booked <= slot.capacity, "{slot:?}");
    }

    // And again: nothing left to book, the same outcome.
    let again = scheduling
        .commit_proposal(commit)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.booked, 0);
    assert_eq!(again.proposal.unwrap().booked as usize, REFERRALS);

    let verified = site.medsec(&["audit", "verify"]);
    assert!(verified.contains("audit trail intact"), "{verified}");
    db.close().await.ok();
}

/// The files of one test's server: its configuration and its log.
struct Site {
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Site {
    fn new(database: &TestDatabase) -> Self {
        let dir = std::env::temp_dir().join(format!("medsec-kill-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let config = dir.join("medsec.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_millis = 50\n\
                 request_timeout_secs = {}\n\
                 [database]\nurl = \"{}\"\nmax_connections = 8\n\
                 [scheduling]\nrun_lease_secs = {}\n\
                 [telemetry]\nlog_filter = \"info,sqlx=warn\"\n",
                CALL_LIMIT.as_secs(),
                database.url,
                LEASE.as_secs()
            ),
        )
        .unwrap();
        Self {
            log: dir.join("medsec.log"),
            dir,
            config,
            port,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_medsec"));
        command
            .arg("--config")
            .arg(&self.config)
            .env_remove("RUST_LOG");
        command
    }

    /// `medsec <args>` on this site's configuration, its output; it must
    /// succeed.
    fn medsec(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("run medsec");
        assert!(output.status.success(), "medsec {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// A token of the development issuer, as `medsec token` prints it.
    fn token(&self, role: &str, subject: &str) -> String {
        let token = self.medsec(&[
            "token",
            "--role",
            role,
            "--subject",
            subject,
            "--purpose",
            "direct_care",
            "--minutes",
            "30",
        ]);
        token.trim().to_owned()
    }

    /// `medsec serve` in the background, its output appended to the log.
    fn serve(&self) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .command()
            // Scheduling alone: its patients are ids records never saw, so
            // it does not ask records about them.
            .args(["serve", "--service", "scheduling"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start medsec serve");
        Server {
            child: Some(child),
            log: self.log.clone(),
        }
    }

    /// A channel to the server once it reports scheduling SERVING.
    async fn ready(&self) -> Channel {
        let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{}", self.port))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_LIMIT);
        let started = Instant::now();
        loop {
            if let Ok(channel) = endpoint.connect().await {
                let health = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest {
                        service: medsec_scheduling::SERVICE_NAME.into(),
                    })
                    .await;
                if health.is_ok_and(|h| h.into_inner().status() == ServingStatus::Serving) {
                    return channel;
                }
            }
            assert!(
                started.elapsed() < CALL_LIMIT,
                "medsec serve never came up; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `medsec serve` process, killed when dropped; its log shown if the test
/// failed.
struct Server {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    /// SIGKILL, and wait for the process to be gone.
    fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- medsec serve log ---\n{}", tail(&self.log));
        }
    }
}

fn tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

type Client = SchedulingServiceClient<InterceptedService<Channel, Bearer>>;

/// A client sending `token` on every call, as a real one would (the token
/// carries its purpose of use).
fn client(channel: &Channel, token: &str) -> Client {
    let bearer = Bearer(format!("Bearer {token}").parse().unwrap());
    SchedulingServiceClient::with_interceptor(channel.clone(), bearer)
}

#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Waits until `done`, polling; fails after [`CALL_LIMIT`].
async fn wait_for<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < CALL_LIMIT, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> usize {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get_by_index(0).unwrap();
    usize::try_from(n).unwrap()
}

async fn appointments_in(db: &DatabaseConnection) -> usize {
    count(db, "SELECT COUNT(*) FROM appointments").await
}

/// Run locks held on the database: SQLite's lease rows, PostgreSQL's
/// advisory locks.
async fn run_locks_in(db: &DatabaseConnection) -> usize {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            count(
                db,
                "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                 WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
            )
            .await
        }
        _ => count(db, "SELECT COUNT(*) FROM optimisation_locks").await,
    }
}

/// A cardiology clinic over the next four weeks: weekdays 09:00 to 17:00 in
/// half-hour slots for three patients each (960 places). Returns the
/// horizon.
async fn clinic(setup: &mut Client) -> (String, String) {
    let clinician = setup
        .create_staff_member(pb::CreateStaffMemberRequest {
            staff_member: Some(pb::StaffMember {
                name: "Dr Kit Ill".into(),
                role: pb::StaffRole::Clinician as i32,
                grade: "consultant".into(),
                specialties: vec!["cardiology".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let location = setup
        .create_location(pb::CreateLocationRequest {
            location: Some(pb::Location {
                name: "Outpatients K".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let from = today_in_london() + Days::new(1);
    let to = from + Days::new(27);
    for weekday in 1..=5 {
        setup
            .create_session_template(pb::CreateSessionTemplateRequest {
                session_template: Some(pb::SessionTemplate {
                    clinician_id: clinician.id.clone(),
                    specialty: "cardiology".into(),
                    location_id: location.id.clone(),
                    weekday,
                    start_time: "09:00".into(),
                    end_time: "17:00".into(),
                    slot_minutes: 30,
                    kind: pb::SlotKind::New as i32,
                    mode: pb::ConsultationMode::FaceToFace as i32,
                    capacity: 3,
                    valid_from: format_civil_date(from),
                    valid_to: format_civil_date(to),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let generated = setup
        .generate_slots(pb::GenerateSlotsRequest {
            from_date: format_civil_date(from),
            to_date: format_civil_date(to),
            clinician_id: clinician.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let weekdays = (0..28)
        .filter(|d| (from + Days::new(*d)).weekday().number_from_monday() <= 5)
        .count();
    assert_eq!(generated.created as usize, weekdays * 16);
    (format_civil_date(from), format_civil_date(to))
}

/// [`REFERRALS`] patients waiting for cardiology, from a day to 40 weeks,
/// one in ten urgent.
async fn waiting_list(scheduling: &mut Client) {
    let today = today_in_london();
    for i in 0..REFERRALS {
        let priority = if i % 10 == 0 {
            pb::Priority::Urgent
        } else {
            pb::Priority::Routine
        };
        scheduling
            .create_referral(pb::CreateReferralRequest {
                referral: Some(pb::Referral {
                    patient_id: uuid::Uuid::now_v7().to_string(),
                    specialty: "cardiology".into(),
                    priority: priority as i32,
                    clock_start: format_civil_date(today - Days::new(1 + (i as u64 * 7) % 280)),
                    kind: pb::SlotKind::New as i32,
                    ..Default::default()
                }),
                request_id: format!("waiting-{i}"),
            })
            .await
            .unwrap();
    }
}

async fn allocations(scheduling: &mut Client, proposal_id: &str) -> Vec<pb::ProposedAllocation> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = scheduling
            .list_proposal_allocations(pb::ListProposalAllocationsRequest {
                proposal_id: proposal_id.into(),
                page_size: 1000,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.allocations);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn booked_appointments(scheduling: &mut Client) -> Vec<pb::Appointment> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = scheduling
            .list_appointments(pb::ListAppointmentsRequest {
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.appointments);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn slots(scheduling: &mut Client) -> Vec<pb::Slot> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = scheduling
            .list_slots(pb::ListSlotsRequest {
                page_size: 1000,
                page_token,
                specialty: "cardiology".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.slots);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}
