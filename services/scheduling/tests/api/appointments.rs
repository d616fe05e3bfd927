use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::scheduling::v1 as pb;
use medsec_scheduling::store::entities::appointment;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tonic::Code;

use crate::helpers::{assert_precondition, patient, spawn_app, violated_fields};

both_backends!(
    books_moves_sees_and_marks_did_not_attend,
    invalid_moves_name_the_state,
    a_slot_never_holds_more_than_its_capacity,
    a_patient_never_holds_two_overlapping_appointments,
    fifty_concurrent_bookings_for_one_slot_admit_exactly_its_capacity,
    refuses_bad_bookings_and_books_nothing,
    a_did_not_attend_is_not_recorded_before_the_appointment_starts,
);

async fn books_moves_sees_and_marks_did_not_attend(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let first = app
        .slot(&clinic, "2026-06-01T09:00:00Z", "2026-06-01T09:30:00Z", 1)
        .await;
    let second = app
        .slot(&clinic, "2026-06-01T09:30:00Z", "2026-06-01T10:00:00Z", 1)
        .await;
    let ada = patient();
    let request = pb::BookAppointmentRequest {
        slot_id: first.id.clone(),
        patient_id: ada.clone(),
        referral_id: String::new(),
        reason: "palpitations".into(),
        request_id: "book-ada-1".into(),
    };
    let booked = app.book_with(request.clone()).await.unwrap();
    let retried = app.book_with(request).await.unwrap();
    assert_eq!(booked.id, retried.id, "a retry books nothing more");
    assert_eq!(booked.status(), pb::AppointmentStatus::Booked);
    assert_eq!(booked.clinician_id, clinic.clinician);
    assert_eq!(app.get_slot(&first.id).await.state(), pb::SlotState::Busy);

    let moved = app
        .client
        .reschedule_appointment(pb::RescheduleAppointmentRequest {
            id: booked.id.clone(),
            new_slot_id: second.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.slot_id, second.id);
    assert_eq!(moved.start_time, second.start_time);
    assert_eq!(app.get_slot(&first.id).await.booked, 0);
    assert_eq!(app.get_slot(&second.id).await.booked, 1);

    let arrived = app.arrive(&booked.id).await.unwrap();
    assert_eq!(arrived.status(), pb::AppointmentStatus::Arrived);
    let seen = app.fulfil(&booked.id).await.unwrap();
    assert_eq!(seen.status(), pb::AppointmentStatus::Fulfilled);

    let bob = app.book(&first.id, &patient(), "").await.unwrap();
    let dna = app.did_not_attend(&bob.id).await.unwrap();
    assert_eq!(dna.status(), pb::AppointmentStatus::Noshow);
    assert_eq!(
        app.get_slot(&first.id).await.booked,
        1,
        "a DNA used its place"
    );

    let third = app
        .slot(&clinic, "2026-06-02T09:00:00Z", "2026-06-02T09:30:00Z", 1)
        .await;
    let carol = app.book(&third.id, &patient(), "").await.unwrap();
    let cancelled = app
        .cancel(&carol.id, pb::CancelledBy::Hospital, "clinic cancelled")
        .await
        .unwrap();
    assert_eq!(cancelled.status(), pb::AppointmentStatus::Cancelled);
    assert_eq!(cancelled.cancelled_by(), pb::CancelledBy::Hospital);
    assert_eq!(app.get_slot(&third.id).await.state(), pb::SlotState::Free);

    let mine = app
        .client
        .list_appointments(pb::ListAppointmentsRequest {
            patient_id: ada,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.appointments.len(), 1);
    let by_clinician = app
        .client
        .list_appointments(pb::ListAppointmentsRequest {
            clinician_id: clinic.clinician.clone(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_clinician.appointments.len(), 2);
    let rest = app
        .client
        .list_appointments(pb::ListAppointmentsRequest {
            clinician_id: clinic.clinician.clone(),
            page_size: 2,
            page_token: by_clinician.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.appointments.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

async fn invalid_moves_name_the_state(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let slot = app
        .slot(&clinic, "2026-06-01T09:00:00Z", "2026-06-01T09:30:00Z", 2)
        .await;
    let other = app
        .slot(&clinic, "2026-06-01T10:00:00Z", "2026-06-01T10:30:00Z", 1)
        .await;
    let booked = app.book(&slot.id, &patient(), "").await.unwrap();
    app.fulfil(&booked.id).await.unwrap();

    let status = app.arrive(&booked.id).await.unwrap_err();
    assert_precondition(&status, "fulfilled");
    let status = app.did_not_attend(&booked.id).await.unwrap_err();
    assert_precondition(&status, "fulfilled");
    let status = app
        .cancel(&booked.id, pb::CancelledBy::Patient, "feeling better")
        .await
        .unwrap_err();
    assert_precondition(&status, "fulfilled");
    let status = app
        .client
        .reschedule_appointment(pb::RescheduleAppointmentRequest {
            id: booked.id.clone(),
            new_slot_id: other.id.clone(),
        })
        .await
        .unwrap_err();
    assert_precondition(&status, "fulfilled");
    assert_eq!(app.get_slot(&other.id).await.booked, 0, "nothing changed");

    let status = app
        .arrive(&uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app.arrive("x").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
}

async fn a_slot_never_holds_more_than_its_capacity(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let slot = app
        .slot(&clinic, "2026-06-01T09:00:00Z", "2026-06-01T09:30:00Z", 2)
        .await;
    app.book(&slot.id, &patient(), "").await.unwrap();
    app.book(&slot.id, &patient(), "").await.unwrap();
    let status = app.book(&slot.id, &patient(), "").await.unwrap_err();
    assert_precondition(&status, "full");
    let stored = app.get_slot(&slot.id).await;
    assert_eq!((stored.booked, stored.state()), (2, pb::SlotState::Busy));
}

async fn a_patient_never_holds_two_overlapping_appointments(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let other = app.staff(crate::helpers::clinician("Dr Ben Hughes")).await;
    let mine = app
        .slot(&clinic, "2026-06-01T09:00:00Z", "2026-06-01T09:30:00Z", 1)
        .await;
    let theirs = app
        .client
        .create_slot(pb::CreateSlotRequest {
            slot: Some(pb::Slot {
                clinician_id: other.id.clone(),
                ..crate::helpers::slot(&clinic, "2026-06-01T09:15:00Z", "2026-06-01T09:45:00Z", 5)
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let ada = patient();
    app.book(&mine.id, &ada, "").await.unwrap();
    let status = app.book(&theirs.id, &ada, "").await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("overlapping"),
        "{}",
        status.message()
    );
    assert_eq!(
        app.get_slot(&theirs.id).await.booked,
        0,
        "the place was given back"
    );

    // Concurrently into two overlapping slots: exactly one wins.
    let bob = patient();
    let calls = [mine.id.clone(), theirs.id.clone(), theirs.id.clone()].map(|slot_id| {
        let mut client = app.client.clone();
        let bob = bob.clone();
        tokio::spawn(async move {
            client
                .book_appointment(pb::BookAppointmentRequest {
                    slot_id,
                    patient_id: bob,
                    ..Default::default()
                })
                .await
        })
    });
    let won = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(won, 1);
}

async fn fifty_concurrent_bookings_for_one_slot_admit_exactly_its_capacity(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let capacity = 3;
    let slot = app
        .slot(
            &clinic,
            "2026-06-01T09:00:00Z",
            "2026-06-01T10:00:00Z",
            capacity,
        )
        .await;
    let calls = (0..50).map(|n| {
        let mut client = app.client.clone();
        let slot_id = slot.id.clone();
        tokio::spawn(async move {
            client
                .book_appointment(pb::BookAppointmentRequest {
                    slot_id,
                    patient_id: patient(),
                    reason: format!("caller {n}"),
                    request_id: format!("rush-{n}"),
                    ..Default::default()
                })
                .await
        })
    });
    let results: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let booked = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(booked, capacity as usize);
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_precondition(status, "full");
    }
    let stored = app.get_slot(&slot.id).await;
    assert_eq!(stored.booked, capacity);
    let rows = appointment::Entity::find()
        .filter(appointment::Column::SlotId.eq(uuid::Uuid::parse_str(&slot.id).unwrap()))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, capacity as u64);
}

async fn refuses_bad_bookings_and_books_nothing(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let status = app
        .book_with(pb::BookAppointmentRequest {
            slot_id: String::new(),
            patient_id: "ada".into(),
            referral_id: "r".into(),
            reason: "x\u{7}".into(),
            request_id: "a b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "request_id",
            "slot_id",
            "patient_id",
            "referral_id",
            "reason"
        ]
    );
    let status = app
        .book(&uuid::Uuid::now_v7().to_string(), &patient(), "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .client
        .cancel_appointment(pb::CancelAppointmentRequest {
            id: uuid::Uuid::now_v7().to_string(),
            cancelled_by: 0,
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["cancelled_by", "reason"]);
    let count = appointment::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(count, 0);
}

async fn a_did_not_attend_is_not_recorded_before_the_appointment_starts(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let day = (chrono::Utc::now() + chrono::Duration::days(3)).date_naive();
    let slot = app
        .slot(
            &clinic,
            &format!("{day}T09:00:00Z"),
            &format!("{day}T09:30:00Z"),
            1,
        )
        .await;
    let ada = patient();
    let waiting = app
        .client
        .create_referral(pb::CreateReferralRequest {
            referral: Some(pb::Referral {
                patient_id: ada.clone(),
                specialty: "cardiology".into(),
                priority: pb::Priority::Routine as i32,
                clock_start: "2026-01-05".into(),
                kind: pb::SlotKind::New as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let booked = app.book(&slot.id, &ada, &waiting.id).await.unwrap();
    let status = app.did_not_attend(&booked.id).await.unwrap_err();
    assert_precondition(&status, "before it starts");
    let unchanged = app
        .client
        .get_appointment(pb::GetAppointmentRequest {
            id: booked.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.status(), pb::AppointmentStatus::Booked);
    let referral = app
        .client
        .get_referral(pb::GetReferralRequest {
            id: waiting.id.clone(),
            as_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(referral.status(), pb::ReferralStatus::Booked);
    assert_eq!(referral.clock_start, "2026-01-05", "the clock is untouched");
}
