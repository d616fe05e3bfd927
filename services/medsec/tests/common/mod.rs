//! What the tests that run the real `medsec` binary share: a site (its
//! configuration, port and logs), the running process, and a clinic to
//! book into.

#![allow(dead_code)] // each test binary uses its own part

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use chrono::Datelike as _;
use medsec_platform::testing::{AuthChannel, TestDatabase};
use medsec_platform::time::{format_civil_date, today_in_london};
use medsec_proto::records::v1 as records;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A routine new-patient cardiology referral, its clock started 8 weeks ago.
pub(crate) fn referral(patient_id: &str) -> scheduling::CreateReferralRequest {
    scheduling::CreateReferralRequest {
        referral: Some(scheduling::Referral {
            patient_id: patient_id.to_owned(),
            specialty: "cardiology".into(),
            priority: scheduling::Priority::Routine as i32,
            clock_start: format_civil_date(today_in_london() - chrono::Duration::weeks(8)),
            kind: scheduling::SlotKind::New as i32,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls `probe` every 25 ms until it answers `Some`, for at most `within`.
pub(crate) async fn wait_for<T>(within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Registers Ada Lovelace (NHS number 943 476 5919); the patient.
pub(crate) async fn register_patient(
    records: &mut RecordsServiceClient<AuthChannel>,
) -> records::Patient {
    records
        .create_patient(records::CreatePatientRequest {
            patient: Some(records::Patient {
                nhs_number: "943 476 5919".into(),
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                birth_date: "1985-12-10".into(),
                sex: records::Sex::Female as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// A cardiology clinic next week; its slots.
pub(crate) async fn clinic(
    scheduling: &mut SchedulingServiceClient<AuthChannel>,
) -> Vec<scheduling::Slot> {
    let clinician = scheduling
        .create_staff_member(scheduling::CreateStaffMemberRequest {
            staff_member: Some(scheduling::StaffMember {
                name: "Dr Faye Ult".into(),
                role: scheduling::StaffRole::Clinician as i32,
                grade: "consultant".into(),
                specialties: vec!["cardiology".into()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let location = scheduling
        .create_location(scheduling::CreateLocationRequest {
            location: Some(scheduling::Location {
                name: "Outpatients F".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let day = today_in_london() + chrono::Duration::days(7);
    scheduling
        .create_session_template(scheduling::CreateSessionTemplateRequest {
            session_template: Some(scheduling::SessionTemplate {
                clinician_id: clinician.id.clone(),
                specialty: "cardiology".into(),
                location_id: location.id,
                weekday: day.weekday().number_from_monday() as i32,
                start_time: "09:00".into(),
                end_time: "11:00".into(),
                slot_minutes: 30,
                kind: scheduling::SlotKind::New as i32,
                mode: scheduling::ConsultationMode::FaceToFace as i32,
                capacity: 1,
                valid_from: format_civil_date(day),
                valid_to: format_civil_date(day),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    scheduling
        .generate_slots(scheduling::GenerateSlotsRequest {
            from_date: format_civil_date(day),
            to_date: format_civil_date(day),
            clinician_id: clinician.id.clone(),
        })
        .await
        .unwrap();
    scheduling
        .list_slots(scheduling::ListSlotsRequest {
            clinician_id: clinician.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .slots
}

/// One service's process: its configuration, port and log, and the TLS
/// its clients use.
pub(crate) struct Site {
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) port: u16,
    tls: Option<ClientTlsConfig>,
    /// The service this site serves (`--service`), or every one.
    service: Option<String>,
}

impl Site {
    /// A site serving `service` (`suite`: every service in one process).
    pub(crate) fn new(
        service: &str,
        database: &TestDatabase,
        otlp: std::net::SocketAddr,
        stream: &str,
        port: u16,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("medsec-split-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("medsec.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace_millis = 50\n\
                 [database]\nurl = \"{url}\"\nmax_connections = 6\n\
                 [events]\nnats_url = \"nats://127.0.0.1:4222\"\nstream = \"{stream}\"\n\
                 subject_prefix = \"t{prefix}\"\npoll_millis = 50\n\
                 [telemetry]\nlog_filter = \"info,sqlx=warn\"\nlog_format = \"json\"\n\
                 otlp_endpoint = \"http://{otlp}\"\nservice_name = \"medsec-{service}\"\n",
                url = database.url,
                prefix = stream.to_lowercase(),
            ),
        )
        .unwrap();
        Self {
            log: dir.join(format!("{service}.log")),
            config,
            port,
            tls: None,
            service: (service != "suite").then(|| service.to_owned()),
        }
    }

    /// Adds `toml` to the configuration.
    pub(crate) fn with(self, toml: &str) -> Self {
        let mut config = std::fs::read_to_string(&self.config).unwrap();
        config.push_str(toml);
        std::fs::write(&self.config, config).unwrap();
        self
    }

    /// Clients reach the server over TLS.
    pub(crate) fn over_tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// `medsec serve [--service <service>]` on this site, killed when
    /// dropped.
    pub(crate) fn serve(&self) -> Process {
        let log = std::fs::File::create(&self.log).unwrap();
        let json = std::fs::File::create(self.log.with_extension("json")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_medsec"))
            .args(["--config"])
            .arg(&self.config)
            .arg("serve")
            .args(
                self.service
                    .iter()
                    .flat_map(|service| ["--service", service]),
            )
            .env_remove("RUST_LOG")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .stdout(json)
            .stderr(log)
            .spawn()
            .expect("start medsec");
        Process(child, self.log.clone())
    }

    /// A channel to the server once it answers its health check.
    pub(crate) async fn ready(&self) -> Channel {
        let endpoint = match &self.tls {
            Some(tls) => Endpoint::from_shared(format!("https://127.0.0.1:{}", self.port))
                .unwrap()
                .tls_config(tls.clone())
                .unwrap(),
            None => Endpoint::from_shared(format!("http://127.0.0.1:{}", self.port)).unwrap(),
        };
        wait_for(Duration::from_secs(60), async || {
            let channel = endpoint.connect().await.ok()?;
            HealthClient::new(channel.clone())
                .check(HealthCheckRequest::default())
                .await
                .ok()?;
            Some(channel)
        })
        .await
    }
}

/// A running server, killed when dropped; its log is shown if the test
/// failed.
pub(crate) struct Process(Child, PathBuf);

impl Process {
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            eprintln!("--- {} ---\n{log}", self.1.display());
        }
    }
}

/// The whole suite served in this process on `settings` (bind to port 0
/// for a free one) until [`Suite::stop`].
pub(crate) struct Suite {
    pub(crate) addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<Result<(), medsec::StartError>>>,
}

impl Suite {
    pub(crate) async fn start(settings: &medsec_platform::Settings) -> Self {
        let app = medsec::Application::build(settings, &[]).await.unwrap();
        let addr = app.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            serving: Some(serving),
        }
    }

    /// Shuts the server down and waits until it has drained.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            serving.await.unwrap().unwrap();
        }
    }
}
