use medsec_platform::audit::entities::event as audit_event;
use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::scheduling::v1 as pb;
use sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _};
use tonic::Code;

use crate::helpers::{assert_precondition, patient, rfc3339, slot, spawn_app, ts, violated_fields};

both_backends!(
    sets_up_staff_locations_and_a_rota,
    refuses_bad_staff_and_stores_nothing,
    generates_slots_across_both_clock_changes_once,
    a_clinician_never_has_overlapping_slots,
    an_absence_makes_slots_unavailable_and_lists_the_displaced,
);

async fn sets_up_staff_locations_and_a_rota(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let secretary = app
        .staff(pb::StaffMember {
            name: "Sam Patel".into(),
            role: pb::StaffRole::Secretary as i32,
            skills: vec![pb::EnquiryCategory::Appointments as i32],
            ..Default::default()
        })
        .await;
    let doctor = app
        .client
        .get_staff_member(pb::GetStaffMemberRequest {
            id: clinic.clinician.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(doctor.specialties, ["cardiology"]);
    assert_eq!(doctor.grade, "consultant");

    let clinicians = app
        .client
        .list_staff_members(pb::ListStaffMembersRequest {
            specialty: "cardiology".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clinicians.staff_members.len(), 1);
    let first_page = app
        .client
        .list_staff_members(pb::ListStaffMembersRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.staff_members.len(), 1);
    let second_page = app
        .client
        .list_staff_members(pb::ListStaffMembersRequest {
            page_size: 1,
            page_token: first_page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.staff_members[0].id, secretary.id);
    assert!(second_page.next_page_token.is_empty());

    let rooms = app
        .client
        .list_rooms(pb::ListRoomsRequest {
            location_id: clinic.location.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rooms.rooms[0].id, clinic.room);

    for (start, end) in [
        ("2026-03-02T08:00:00Z", "2026-03-02T16:00:00Z"),
        ("2026-03-03T08:00:00Z", "2026-03-03T16:00:00Z"),
    ] {
        app.shift(&secretary.id, start, end).await;
    }
    let on_duty = app
        .client
        .list_duty_shifts(pb::ListDutyShiftsRequest {
            on_duty_at: Some(ts("2026-03-03T12:00:00Z")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(on_duty.duty_shifts.len(), 1);
    assert_eq!(
        rfc3339(&on_duty.duty_shifts[0].start_time),
        "2026-03-03T08:00:00Z"
    );
}

async fn refuses_bad_staff_and_stores_nothing(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let status = app
        .client
        .create_staff_member(pb::CreateStaffMemberRequest {
            staff_member: Some(pb::StaffMember {
                name: " ".into(),
                role: pb::StaffRole::Clinician as i32,
                skills: vec![42],
                ..Default::default()
            }),
            request_id: "has space".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "request_id",
            "staff_member.name",
            "staff_member.skills[0]",
            "staff_member.grade",
            "staff_member.specialties"
        ]
    );
    let status = app
        .client
        .create_duty_shift(pb::CreateDutyShiftRequest {
            duty_shift: Some(pb::DutyShift {
                staff_member_id: "not-a-uuid".into(),
                start_time: Some(ts("2026-03-02T16:00:00Z")),
                end_time: Some(ts("2026-03-02T08:00:00Z")),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["duty_shift.staff_member_id", "duty_shift.end_time"]
    );
    let listed = app
        .client
        .list_staff_members(pb::ListStaffMembersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.staff_members.is_empty());
    let status = app
        .client
        .list_staff_members(pb::ListStaffMembersRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
}

fn sunday_clinic(clinic: &crate::helpers::Clinic) -> pb::SessionTemplate {
    pb::SessionTemplate {
        clinician_id: clinic.clinician.clone(),
        specialty: "cardiology".into(),
        location_id: clinic.location.clone(),
        room_id: clinic.room.clone(),
        weekday: 7,
        start_time: "09:00".into(),
        end_time: "10:00".into(),
        slot_minutes: 30,
        kind: pb::SlotKind::New as i32,
        mode: pb::ConsultationMode::FaceToFace as i32,
        capacity: 1,
        valid_from: "2026-01-01".into(),
        valid_to: String::new(),
        ..Default::default()
    }
}

async fn generates_slots_across_both_clock_changes_once(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    app.client
        .create_session_template(pb::CreateSessionTemplateRequest {
            session_template: Some(sunday_clinic(&clinic)),
            request_id: "template-1".into(),
        })
        .await
        .unwrap();

    let generate = |from: &str, to: &str| pb::GenerateSlotsRequest {
        from_date: from.into(),
        to_date: to.into(),
        clinician_id: String::new(),
    };
    // The last Sundays of March and October 2026: 29 March and 25 October.
    let spring = app
        .client
        .generate_slots(generate("2026-03-22", "2026-03-29"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((spring.created, spring.existing), (4, 0));
    let autumn = app
        .client
        .generate_slots(generate("2026-10-18", "2026-10-25"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(autumn.created, 4);
    let again = app
        .client
        .generate_slots(generate("2026-03-01", "2026-03-29"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.existing, 4, "the March slots already exist");
    assert_eq!(again.created, 6, "the three earlier Sundays of March");
    let repeat = app
        .client
        .generate_slots(generate("2026-03-01", "2026-10-25"))
        .await
        .unwrap();
    let total = repeat.into_inner().created + 4 + 4 + 6;
    let listed = app
        .client
        .list_slots(pb::ListSlotsRequest {
            clinician_id: clinic.clinician.clone(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.slots.len() as i32, total);
    let rerun = app
        .client
        .generate_slots(generate("2026-03-01", "2026-10-25"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rerun.created, 0, "a second run creates nothing");
    assert_eq!(rerun.existing, total);

    let starts: Vec<(String, String)> = listed
        .slots
        .iter()
        .map(|s| (s.date.clone(), rfc3339(&s.start_time)))
        .collect();
    for expected in [
        ("2026-03-22", "2026-03-22T09:00:00Z"),
        ("2026-03-29", "2026-03-29T08:00:00Z"),
        ("2026-03-29", "2026-03-29T08:30:00Z"),
        ("2026-10-18", "2026-10-18T08:00:00Z"),
        ("2026-10-25", "2026-10-25T09:00:00Z"),
        ("2026-10-25", "2026-10-25T09:30:00Z"),
    ] {
        assert!(
            starts.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing"
        );
    }
    assert!(
        listed
            .slots
            .iter()
            .all(|s| s.state() == pb::SlotState::Free)
    );

    let status = app
        .client
        .create_session_template(pb::CreateSessionTemplateRequest {
            session_template: Some(pb::SessionTemplate {
                weekday: 8,
                start_time: "9:00".into(),
                end_time: "08:00".into(),
                slot_minutes: 0,
                capacity: 0,
                valid_from: "01/01/2026".into(),
                ..sunday_clinic(&clinic)
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "session_template.weekday",
            "session_template.start_time",
            "session_template.slot_minutes",
            "session_template.capacity",
            "session_template.valid_from"
        ]
    );
}

async fn a_clinician_never_has_overlapping_slots(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    app.slot(&clinic, "2026-05-05T09:00:00Z", "2026-05-05T09:30:00Z", 1)
        .await;
    let status = app
        .client
        .create_slot(pb::CreateSlotRequest {
            slot: Some(slot(
                &clinic,
                "2026-05-05T09:15:00Z",
                "2026-05-05T09:45:00Z",
                1,
            )),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("overlapping"));

    // Concurrent ad-hoc slots at the same time: exactly one is made.
    let calls = (0..6).map(|_| {
        let mut client = app.client.clone();
        let slot = slot(&clinic, "2026-05-06T09:00:00Z", "2026-05-06T09:30:00Z", 1);
        tokio::spawn(async move {
            client
                .create_slot(pb::CreateSlotRequest {
                    slot: Some(slot),
                    request_id: String::new(),
                })
                .await
        })
    });
    let made = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(made, 1);
    let listed = app
        .client
        .list_slots(pb::ListSlotsRequest {
            clinician_id: clinic.clinician.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.slots.len(), 2);
}

async fn an_absence_makes_slots_unavailable_and_lists_the_displaced(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let monday = app
        .slot(&clinic, "2026-06-01T09:00:00Z", "2026-06-01T09:30:00Z", 1)
        .await;
    let tuesday = app
        .slot(&clinic, "2026-06-02T09:00:00Z", "2026-06-02T09:30:00Z", 2)
        .await;
    let later = app
        .slot(&clinic, "2026-06-03T09:00:00Z", "2026-06-03T09:30:00Z", 1)
        .await;
    let booked = app.book(&monday.id, &patient(), "").await.unwrap();

    let absence = app
        .client
        .create_absence(pb::CreateAbsenceRequest {
            absence: Some(pb::Absence {
                clinician_id: clinic.clinician.clone(),
                start_time: Some(ts("2026-05-31T23:00:00Z")),
                end_time: Some(ts("2026-06-02T23:00:00Z")),
                reason: pb::AbsenceReason::Sickness as i32,
                note: "flu".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(absence.displaced_appointments.len(), 1);
    assert_eq!(absence.displaced_appointments[0].id, booked.id);
    // The absence showed a patient's appointment: that access is audited,
    // in the displaced patient's chain.
    let displaced_patient = uuid::Uuid::parse_str(&booked.patient_id).unwrap();
    let audited = audit_event::Entity::find()
        .filter(audit_event::Column::PatientId.eq(displaced_patient))
        .filter(audit_event::Column::Method.eq("CreateAbsence"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(
        audited, 1,
        "CreateAbsence audited for the displaced patient"
    );
    assert_eq!(
        app.get_slot(&tuesday.id).await.state(),
        pb::SlotState::BusyUnavailable
    );
    let status = app.book(&tuesday.id, &patient(), "").await.unwrap_err();
    assert_precondition(&status, "busy-unavailable");

    // The displaced patient is moved to a day the clinician is in.
    let moved = app
        .client
        .reschedule_appointment(pb::RescheduleAppointmentRequest {
            id: booked.id.clone(),
            new_slot_id: later.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.slot_id, later.id);

    let week = app
        .client
        .get_diary(pb::GetDiaryRequest {
            clinician_id: clinic.clinician.clone(),
            date: "2026-06-01".into(),
            span: pb::DiarySpan::Week as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let states: Vec<(pb::SlotState, usize)> = week
        .entries
        .iter()
        .map(|e| (e.slot.as_ref().unwrap().state(), e.appointments.len()))
        .collect();
    assert_eq!(
        states,
        [
            (pb::SlotState::BusyUnavailable, 0),
            (pb::SlotState::BusyUnavailable, 0),
            (pb::SlotState::Busy, 1),
        ]
    );
    let day = app
        .client
        .get_diary(pb::GetDiaryRequest {
            clinician_id: clinic.clinician.clone(),
            date: "2026-06-03".into(),
            span: pb::DiarySpan::Day as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(day.entries.len(), 1);
    assert_eq!(day.entries[0].appointments[0].id, booked.id);
    let listed = app
        .client
        .list_absences(pb::ListAbsencesRequest {
            clinician_id: clinic.clinician.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.absences.len(), 1);
    assert!(listed.absences[0].displaced_appointments.is_empty());
}
