use chrono::{DateTime, Utc};
use medsec_platform::server::Services;
use medsec_platform::testing::{Backend, TestDatabase, TestServer};
use medsec_proto::scheduling::v1 as pb;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use sea_orm::DatabaseConnection;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A SchedulingService on a fresh database, and a client for it.
pub(crate) struct TestApp {
    pub(crate) client: SchedulingServiceClient<Channel>,
    pub(crate) db: DatabaseConnection,
    _server: TestServer,
    _database: TestDatabase,
}

pub(crate) async fn spawn_app(backend: Backend) -> TestApp {
    let database = TestDatabase::create(backend).await;
    let settings = database.settings();
    let db = database.connect().await;
    medsec_scheduling::migrate(&db).await.expect("migrate");
    let services = Services::new().with(medsec_scheduling::service(db.clone(), &settings));
    let server = TestServer::start(&settings, services).await;
    let client = SchedulingServiceClient::new(server.channel().await);
    TestApp {
        client,
        db,
        _server: server,
        _database: database,
    }
}

pub(crate) fn ts(text: &str) -> prost_types::Timestamp {
    let instant: DateTime<Utc> = DateTime::parse_from_rfc3339(text).unwrap().into();
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: 0,
    }
}

pub(crate) fn rfc3339(timestamp: &Option<prost_types::Timestamp>) -> String {
    let t = timestamp.as_ref().expect("timestamp");
    DateTime::from_timestamp(t.seconds, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A patient id as the records service issues them.
pub(crate) fn patient() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A clinic: one cardiology consultant at one location with one room.
pub(crate) struct Clinic {
    pub(crate) clinician: String,
    pub(crate) location: String,
    pub(crate) room: String,
}

impl TestApp {
    pub(crate) async fn staff(&mut self, member: pb::StaffMember) -> pb::StaffMember {
        self.client
            .create_staff_member(pb::CreateStaffMemberRequest {
                staff_member: Some(member),
                request_id: String::new(),
            })
            .await
            .expect("create staff member")
            .into_inner()
    }

    pub(crate) async fn clinic(&mut self) -> Clinic {
        let clinician = self.staff(clinician("Dr Amara Okafor")).await.id;
        let location = self
            .client
            .create_location(pb::CreateLocationRequest {
                location: Some(pb::Location {
                    name: "Outpatients East".into(),
                    address: "1 Hospital Road, Leeds".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .id;
        let room = self
            .client
            .create_room(pb::CreateRoomRequest {
                room: Some(pb::Room {
                    location_id: location.clone(),
                    name: "Room 3".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .id;
        Clinic {
            clinician,
            location,
            room,
        }
    }

    /// An ad-hoc cardiology slot.
    pub(crate) async fn slot(
        &mut self,
        clinic: &Clinic,
        start: &str,
        end: &str,
        capacity: i32,
    ) -> pb::Slot {
        self.client
            .create_slot(pb::CreateSlotRequest {
                slot: Some(slot(clinic, start, end, capacity)),
                request_id: String::new(),
            })
            .await
            .expect("create slot")
            .into_inner()
    }

    pub(crate) async fn book(
        &mut self,
        slot_id: &str,
        patient_id: &str,
        referral_id: &str,
    ) -> Result<pb::Appointment, Status> {
        self.client
            .book_appointment(pb::BookAppointmentRequest {
                slot_id: slot_id.into(),
                patient_id: patient_id.into(),
                referral_id: referral_id.into(),
                reason: "chest pain on exertion".into(),
                request_id: String::new(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn get_slot(&mut self, id: &str) -> pb::Slot {
        self.client
            .get_slot(pb::GetSlotRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
    }
}

pub(crate) fn clinician(name: &str) -> pb::StaffMember {
    pb::StaffMember {
        name: name.into(),
        role: pb::StaffRole::Clinician as i32,
        grade: "consultant".into(),
        specialties: vec!["Cardiology".into()],
        skills: vec![pb::EnquiryCategory::Clinical as i32],
        ..Default::default()
    }
}

pub(crate) fn slot(clinic: &Clinic, start: &str, end: &str, capacity: i32) -> pb::Slot {
    pb::Slot {
        clinician_id: clinic.clinician.clone(),
        specialty: "cardiology".into(),
        location_id: clinic.location.clone(),
        room_id: clinic.room.clone(),
        start_time: Some(ts(start)),
        end_time: Some(ts(end)),
        kind: pb::SlotKind::New as i32,
        mode: pb::ConsultationMode::FaceToFace as i32,
        capacity,
        ..Default::default()
    }
}

/// The bad fields an INVALID_ARGUMENT status names.
pub(crate) fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

/// Asserts a FAILED_PRECONDITION whose message contains `state`.
pub(crate) fn assert_precondition(status: &Status, state: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains(state),
        "{state} not in {}",
        status.message()
    );
    assert!(status.get_details_precondition_failure().is_some());
}
