//! The scheduling fixtures of the API tests: a running service with its
//! client (the harness is the platform's), and a clinic, slots and bookings
//! made through the API.

use chrono::{DateTime, Utc};
use medsec_platform::server::Services;
use medsec_platform::testing::AuthChannel;
use medsec_platform::testing::{
    Backend, Running, TestDatabase, precondition_type, start, start_with,
};
use medsec_proto::scheduling::v1 as pb;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use sea_orm::DatabaseConnection;
use tonic::Status;

pub(crate) use medsec_platform::testing::violated_fields;

/// A SchedulingService on a fresh database, and a client for it.
pub(crate) struct TestApp {
    pub(crate) client: SchedulingServiceClient<AuthChannel>,
    pub(crate) db: DatabaseConnection,
    /// The server and its database, stopped and dropped with the app.
    pub(crate) running: Running,
}

pub(crate) async fn spawn_app(backend: Backend) -> TestApp {
    TestApp::new(start(backend, medsec_scheduling::migrate, routes).await)
}

/// A SchedulingService whose settings `adjust` changes.
pub(crate) async fn spawn_app_with(
    backend: Backend,
    adjust: impl FnOnce(&mut medsec_platform::Settings),
) -> TestApp {
    let database = TestDatabase::create(backend).await;
    let mut settings = database.settings();
    adjust(&mut settings);
    TestApp::new(start_with(database, settings, medsec_scheduling::migrate, routes).await)
}

fn routes(db: DatabaseConnection, settings: &medsec_platform::Settings) -> Services {
    Services::new().with(
        medsec_scheduling::service(db, settings),
        &medsec_scheduling::POLICY,
    )
}

impl TestApp {
    fn new(running: Running) -> Self {
        Self {
            client: SchedulingServiceClient::new(running.authorised_channel()),
            db: running.db.clone(),
            running,
        }
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

/// The message of an answer, or its status.
pub(crate) fn answer<T>(answer: Result<tonic::Response<T>, Status>) -> Result<T, Status> {
    answer.map(tonic::Response::into_inner)
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
        self.book_with(pb::BookAppointmentRequest {
            slot_id: slot_id.into(),
            patient_id: patient_id.into(),
            referral_id: referral_id.into(),
            reason: "chest pain on exertion".into(),
            request_id: String::new(),
        })
        .await
    }

    pub(crate) async fn book_with(
        &mut self,
        request: pb::BookAppointmentRequest,
    ) -> Result<pb::Appointment, Status> {
        answer(self.client.book_appointment(request).await)
    }

    pub(crate) async fn arrive(&mut self, id: &str) -> Result<pb::Appointment, Status> {
        let id = id.to_owned();
        answer(
            self.client
                .mark_arrived(pb::MarkArrivedRequest { id })
                .await,
        )
    }

    pub(crate) async fn fulfil(&mut self, id: &str) -> Result<pb::Appointment, Status> {
        let id = id.to_owned();
        answer(
            self.client
                .mark_fulfilled(pb::MarkFulfilledRequest { id })
                .await,
        )
    }

    pub(crate) async fn did_not_attend(&mut self, id: &str) -> Result<pb::Appointment, Status> {
        let id = id.to_owned();
        let request = pb::MarkDidNotAttendRequest { id };
        answer(self.client.mark_did_not_attend(request).await)
    }

    pub(crate) async fn cancel(
        &mut self,
        id: &str,
        cancelled_by: pb::CancelledBy,
        reason: &str,
    ) -> Result<pb::Appointment, Status> {
        let request = pb::CancelAppointmentRequest {
            id: id.into(),
            cancelled_by: cancelled_by as i32,
            reason: reason.into(),
        };
        answer(self.client.cancel_appointment(request).await)
    }

    pub(crate) async fn remove_referral(
        &mut self,
        id: &str,
        reason: &str,
    ) -> Result<pb::Referral, Status> {
        let request = pb::RemoveReferralRequest {
            id: id.into(),
            reason: reason.into(),
        };
        answer(self.client.remove_referral(request).await)
    }

    /// Puts a staff member on duty from `start` to `end` (RFC 3339).
    pub(crate) async fn shift(&mut self, staff_member_id: &str, start: &str, end: &str) {
        let shift = pb::DutyShift {
            staff_member_id: staff_member_id.into(),
            start_time: Some(ts(start)),
            end_time: Some(ts(end)),
            ..Default::default()
        };
        self.client
            .create_duty_shift(pb::CreateDutyShiftRequest {
                duty_shift: Some(shift),
                request_id: String::new(),
            })
            .await
            .expect("create duty shift");
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

/// Asserts a FAILED_PRECONDITION, with its details, whose message contains
/// `state`.
pub(crate) fn assert_precondition(status: &Status, state: &str) {
    precondition_type(status);
    assert!(
        status.message().contains(state),
        "{state} not in {}",
        status.message()
    );
}
