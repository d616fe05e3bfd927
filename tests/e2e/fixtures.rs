//! What several whole-suite tests set up through the API.

use medsec_platform::testing::AuthChannel;
use medsec_platform::time::{format_civil_date, today_in_london};
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;

/// A cardiology clinic: one consultant, mornings on weekdays for the next
/// two weeks, slots of half an hour.
pub(crate) struct Clinic {
    pub(crate) slots: Vec<scheduling::Slot>,
}

pub(crate) async fn clinic(
    scheduling: &mut SchedulingServiceClient<AuthChannel>,
    capacity: i32,
) -> Clinic {
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
    let (from, to) = (
        today_in_london() + chrono::Duration::days(1),
        today_in_london() + chrono::Duration::days(14),
    );
    for weekday in 1..=5 {
        scheduling
            .create_session_template(scheduling::CreateSessionTemplateRequest {
                session_template: Some(scheduling::SessionTemplate {
                    clinician_id: clinician.id.clone(),
                    specialty: "cardiology".into(),
                    location_id: location.id.clone(),
                    weekday,
                    start_time: "09:00".into(),
                    end_time: "13:00".into(),
                    slot_minutes: 30,
                    kind: scheduling::SlotKind::New as i32,
                    mode: scheduling::ConsultationMode::FaceToFace as i32,
                    capacity,
                    valid_from: format_civil_date(from),
                    valid_to: format_civil_date(to),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    scheduling
        .generate_slots(scheduling::GenerateSlotsRequest {
            from_date: format_civil_date(from),
            to_date: format_civil_date(to),
            clinician_id: clinician.id.clone(),
        })
        .await
        .unwrap();
    let slots = scheduling
        .list_slots(scheduling::ListSlotsRequest {
            clinician_id: clinician.id.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .slots;
    assert!(slots.len() >= 40, "{} slots", slots.len());
    Clinic { slots }
}
