//! RecordsService's test app and fixtures: the server comes from the
//! platform's harness, the patients and callers from here.

use medsec_platform::Settings;
use medsec_platform::auth::Role;
use medsec_platform::events;
use medsec_platform::server::Services;
use medsec_platform::testing::{
    AuthChannel, Backend, Caller, Running, TestDatabase, start, start_with,
};
use medsec_proto::records::v1 as pb;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_records::domain::NhsNumber;
use medsec_records::store::entities::patient::Entity as Patients;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

/// A RecordsService on a fresh database, and a client for it.
pub(crate) struct TestApp {
    /// A client holding every staff role, reading for direct care.
    pub(crate) client: RecordsServiceClient<AuthChannel>,
    /// The service's database, for checks behind the API.
    pub(crate) db: DatabaseConnection,
    /// The server, its database and the issuer of test callers' tokens.
    pub(crate) running: Running,
}

pub(crate) async fn spawn_app(backend: Backend) -> TestApp {
    TestApp::new(start(backend, medsec_records::migrate, routes).await)
}

/// A RecordsService with adjusted settings.
pub(crate) async fn spawn_app_with(database: TestDatabase, settings: Settings) -> TestApp {
    TestApp::new(start_with(database, settings, medsec_records::migrate, routes).await)
}

fn routes(db: DatabaseConnection, settings: &Settings) -> Services {
    Services::new().with(
        medsec_records::service(db, settings),
        &medsec_records::POLICY,
    )
}

impl TestApp {
    fn new(running: Running) -> Self {
        Self {
            client: RecordsServiceClient::new(running.authorised_channel()),
            db: running.db.clone(),
            running,
        }
    }

    /// A client calling as `caller`.
    pub(crate) fn client_as(&self, caller: &Caller) -> RecordsServiceClient<AuthChannel> {
        RecordsServiceClient::new(self.running.channel_as(caller))
    }

    /// A client calling as the secretary s.jones, for direct care.
    pub(crate) fn secretary(&self) -> RecordsServiceClient<AuthChannel> {
        self.client_as(&Caller::staff("s.jones", &[Role::Secretary]))
    }

    /// Every event raised so far, as written to the outbox, in order.
    pub(crate) async fn raised(&self) -> Vec<events::pb::Envelope> {
        medsec_platform::testing::raised_events(&self.db).await
    }

    /// Rows in the patients table, archived or not.
    pub(crate) async fn stored_patients(&self) -> u64 {
        Patients::find()
            .count(&self.db)
            .await
            .expect("count patients")
    }

    pub(crate) async fn create(&mut self, patient: pb::Patient) -> pb::Patient {
        self.try_create(patient).await.expect("create patient")
    }

    /// Registers `patient` without a request id.
    pub(crate) async fn try_create(
        &mut self,
        patient: pb::Patient,
    ) -> Result<pb::Patient, tonic::Status> {
        self.client
            .create_patient(pb::CreatePatientRequest {
                patient: Some(patient),
                request_id: String::new(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Files `document` with `content`, and the first call with
    /// `request_id` files it once.
    pub(crate) async fn file(
        &mut self,
        document: pb::Document,
        content: &[u8],
        request_id: &str,
    ) -> Result<pb::Document, tonic::Status> {
        self.client
            .create_document(pb::CreateDocumentRequest {
                document: Some(document),
                content: content.to_vec(),
                request_id: request_id.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Registers a valid patient and returns its id.
    pub(crate) async fn patient_id(&mut self, n: u32) -> String {
        self.create(patient(&test_nhs_number(n), "Pat", &format!("Ient{n}")))
            .await
            .id
    }
}

/// A valid patient; NHS numbers from the never-issued 999 test range.
pub(crate) fn patient(nhs_number: &str, given: &str, family: &str) -> pb::Patient {
    pb::Patient {
        nhs_number: nhs_number.into(),
        given_name: given.into(),
        family_name: family.into(),
        birth_date: "1970-01-31".into(),
        sex: pb::Sex::Female as i32,
        address: Some(pb::Address {
            lines: vec!["1 Hospital Road".into()],
            town: "Leeds".into(),
            postcode: "LS1 3EX".into(),
        }),
        phone: "0113 243 2799".into(),
        email: format!("{}@example.org", given.trim().to_lowercase()),
        gp_practice: Some(pb::GpPractice {
            ods_code: "B86001".into(),
            name: "Park Surgery".into(),
        }),
        ..Default::default()
    }
}

/// A letter to file for a patient.
pub(crate) fn letter(patient_id: &str) -> pb::Document {
    pb::Document {
        patient_id: patient_id.into(),
        title: "Discharge letter".into(),
        kind: pb::DocumentKind::Letter as i32,
        content_type: "application/pdf".into(),
        author: "Dr A Khan".into(),
        ..Default::default()
    }
}

/// The `n`th valid NHS number of the test range 999 000 0000 onwards.
pub(crate) fn test_nhs_number(n: u32) -> String {
    NhsNumber::at_or_after(999_000_000 + n * 10).to_string()
}

/// A request sent within a trace, as a traced caller would send it.
pub(crate) fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    request
}
