//! The optimiser for one referral, one slot or one displacement through
//! the API: BookBestSlot's ranking and booking, RebookDisplaced (once per
//! appointment, however many runs race), and OfferFreedSlot's holds.

use medsec_platform::audit::Actor;
use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::scheduling::v1 as pb;

use super::{
    appointment, create_referral, create_slot, day_slot, offer, offer_of, ok, rebook,
    rebook_in_june, referral, referral_now, refused, sick_on_1_june, waiting,
};
use crate::helpers::{assert_precondition, patient, spawn_app};

both_backends!(
    book_best_slot_ranks_by_the_models_cost_and_books,
    rebook_displaced_moves_patients_off_an_absence_and_a_hospital_cancellation,
    offer_freed_slot_holds_it_for_the_best_waiting_referral,
    a_hold_ends_when_its_referral_is_booked_elsewhere_or_removed,
    a_displaced_appointment_is_moved_once,
);

async fn book_best_slot_ranks_by_the_models_cost_and_books(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let other = app.staff(crate::helpers::clinician("Dr Ben Hale")).await.id;
    let later = day_slot(&mut app, &clinic, "2026-06-10", 1).await;
    let sooner = day_slot(&mut app, &clinic, "2026-06-03", 1).await;
    let mut with_other =
        crate::helpers::slot(&clinic, "2026-06-03T11:00:00Z", "2026-06-03T11:30:00Z", 1);
    with_other.clinician_id = other.clone();
    let by_other = create_slot(&mut app, with_other).await;
    let ada = patient();
    let prefers = pb::Referral {
        preferred_clinician: clinic.clinician.clone(),
        ..waiting(&ada, pb::Priority::Routine, "2026-05-01")
    };
    let prefers = create_referral(&mut app, prefers).await;
    let ask = pb::BookBestSlotRequest {
        referral_id: prefers.id.clone(),
        from_date: "2026-06-01".into(),
        to_date: "2026-06-30".into(),
        ..Default::default()
    };
    let ranked = ok(app.client.book_best_slot(ask.clone())).await;
    let order: Vec<&str> = ranked
        .candidates
        .iter()
        .map(|c| c.slot.as_ref().unwrap().id.as_str())
        .collect();
    // Same day: the preferred clinician is cheaper by C = 20; later costs more.
    assert_eq!(
        order,
        [sooner.id.as_str(), by_other.id.as_str(), later.id.as_str()]
    );
    assert_eq!(ranked.candidates[0].cost, 33 * 33);
    assert_eq!(ranked.candidates[1].cost, 33 * 33 + 20);
    assert!(ranked.candidates[1].preference_missed);
    assert!(ranked.appointment.is_none(), "nothing booked without book");

    // The best slot is taken meanwhile: booking falls through to the next.
    app.book(&sooner.id, &patient(), "").await.unwrap();
    let book = pb::BookBestSlotRequest {
        book: true,
        request_id: "best-ada".into(),
        max_candidates: 2,
        ..ask.clone()
    };
    let booked = ok(app.client.book_best_slot(book.clone())).await;
    assert_eq!(booked.candidates.len(), 2);
    let appointment = booked.appointment.unwrap();
    assert_eq!(appointment.slot_id, by_other.id);
    assert_eq!(appointment.referral_id, prefers.id);
    let retried = app.client.book_best_slot(book).await.unwrap().into_inner();
    assert_eq!(
        retried.appointment.unwrap().id,
        appointment.id,
        "a retry books nothing more"
    );
    let status = app.client.book_best_slot(ask).await.unwrap_err();
    assert_precondition(&status, "booked");
}

async fn rebook_displaced_moves_patients_off_an_absence_and_a_hospital_cancellation(
    backend: Backend,
) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let on_leave = day_slot(&mut app, &clinic, "2026-06-01", 2).await;
    let spare_soon = day_slot(&mut app, &clinic, "2026-06-08", 1).await;
    let spare_late = day_slot(&mut app, &clinic, "2026-06-22", 1).await;
    let cancelled_clinic = day_slot(&mut app, &clinic, "2026-06-15", 1).await;
    let (ada, bo, cy) = (patient(), patient(), patient());
    let urgent = referral(&mut app, &ada, pb::Priority::Urgent, "2026-05-20").await;
    let routine = referral(&mut app, &bo, pb::Priority::Routine, "2026-04-01").await;
    let third = referral(&mut app, &cy, pb::Priority::Routine, "2026-03-01").await;
    let a = app.book(&on_leave.id, &ada, &urgent.id).await.unwrap();
    let b = app.book(&on_leave.id, &bo, &routine.id).await.unwrap();
    let c = app
        .book(&cancelled_clinic.id, &cy, &third.id)
        .await
        .unwrap();

    let absence = sick_on_1_june(&mut app, &clinic.clinician).await;
    assert_eq!(absence.displaced_appointments.len(), 2);
    let rebooked = rebook(&mut app, rebook_in_june(&absence.id, &[]))
        .await
        .unwrap();
    assert!(rebooked.optimal);
    assert!(rebooked.not_moved.is_empty(), "{rebooked:?}");
    let to = |appointment: &pb::Appointment| {
        rebooked
            .moves
            .iter()
            .find(|m| m.from_appointment_id == appointment.id)
            .map(|m| (m.to_slot_id.clone(), m.appointment_id.clone()))
            .unwrap()
    };
    // Both patients have waited past... the urgent one's due date (28 days
    // from 20 May is 17 June) makes the soon slot worth more to her.
    assert_eq!(to(&a), (spare_soon.id.clone(), a.id.clone()));
    assert_eq!(to(&b), (spare_late.id.clone(), b.id.clone()));
    let moved = appointment(&mut app, &a.id).await;
    assert_eq!(moved.slot_id, spare_soon.id);
    assert_eq!(app.get_slot(&on_leave.id).await.booked, 0);
    let clock = referral_now(&mut app, &urgent.id).await;
    assert_eq!(clock.clock_start, "2026-05-20", "original clock kept");

    // Again: nothing left displaced.
    let again = rebook(&mut app, rebook_in_june(&absence.id, &[]))
        .await
        .unwrap();
    assert!(again.moves.is_empty());

    // A hospital cancellation: Cy's referral is booked anew. No slot is free
    // until one is added.
    let hospital = pb::CancelledBy::Hospital;
    app.cancel(&c.id, hospital, "clinic cancelled")
        .await
        .unwrap();
    let extra = day_slot(&mut app, &clinic, "2026-06-29", 1).await;
    let rebooked = rebook(&mut app, rebook_in_june("", &[&c.id]))
        .await
        .unwrap();
    assert_eq!(rebooked.moves.len(), 1);
    let new = &rebooked.moves[0];
    assert_eq!(new.to_slot_id, extra.id, "not the cancelled clinic's slot");
    assert_ne!(new.appointment_id, c.id);
    assert_eq!(new.referral_id, third.id);

    // A booked appointment in a working slot is not displaced.
    let status = rebook(&mut app, rebook_in_june("", &[&new.appointment_id]))
        .await
        .unwrap_err();
    assert_precondition(&status, "booked");
}

async fn offer_freed_slot_holds_it_for_the_best_waiting_referral(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let slot = day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    let (ada, bo) = (patient(), patient());
    let leaving = referral(&mut app, &ada, pb::Priority::Routine, "2026-01-01").await;
    let booked = app.book(&slot.id, &ada, &leaving.id).await.unwrap();
    let longest = referral(&mut app, &bo, pb::Priority::Routine, "2026-01-05").await;
    referral(&mut app, &patient(), pb::Priority::Routine, "2026-03-01").await;

    let request = offer_of(&slot.id, 2);
    let status = refused(app.client.offer_freed_slot(request.clone())).await;
    assert_precondition(&status, "busy");

    app.cancel(&booked.id, pb::CancelledBy::Patient, "moving away")
        .await
        .unwrap();
    let offer = ok(app.client.offer_freed_slot(request.clone())).await;
    // The longest routine waiter gains most by being seen now.
    let referral = offer.referral.unwrap();
    // Ada's referral (waiting again, and longer-waiting than the third) is
    // not offered the slot she has just given up.
    assert_eq!(referral.id, longest.id, "not {}", leaving.id);
    let held = offer.slot.unwrap();
    assert_eq!(held.state(), pb::SlotState::BusyTentative);
    assert_eq!(held.held_for_referral_id, longest.id);
    assert_eq!(offer.wait_days, 147);
    assert_eq!(
        app.get_slot(&slot.id).await.state(),
        pb::SlotState::BusyTentative
    );

    let status = app.client.offer_freed_slot(request).await.unwrap_err();
    assert_precondition(&status, "busy-tentative");
    // Only the offered referral may take it meanwhile.
    let status = app.book(&slot.id, &patient(), "").await.unwrap_err();
    assert_precondition(&status, "busy-tentative");
    let free = ok(app.client.list_slots(pb::ListSlotsRequest {
        free_only: true,
        ..Default::default()
    }))
    .await
    .slots;
    assert!(free.is_empty(), "a held slot is not free");
    let taken = app.book(&slot.id, &bo, &longest.id).await.unwrap();
    assert_eq!(taken.slot_id, slot.id);
    let after = app.get_slot(&slot.id).await;
    assert_eq!(after.state(), pb::SlotState::Busy);
    assert!(after.held_for_referral_id.is_empty());
}

async fn a_hold_ends_when_its_referral_is_booked_elsewhere_or_removed(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let held = day_slot(&mut app, &clinic, "2026-06-01", 1).await;
    let elsewhere = day_slot(&mut app, &clinic, "2026-06-10", 1).await;
    let (bo, cy) = (patient(), patient());
    let longest = referral(&mut app, &bo, pb::Priority::Routine, "2026-01-05").await;
    let next = referral(&mut app, &cy, pb::Priority::Routine, "2026-03-01").await;

    let offered = offer(&mut app, &held.id).await.unwrap();
    assert_eq!(offered.referral.unwrap().id, longest.id);
    assert_eq!(
        app.get_slot(&held.id).await.state(),
        pb::SlotState::BusyTentative
    );
    // The slot held for Bo is his to take: BookBestSlot sees it.
    let best = ok(app.client.book_best_slot(pb::BookBestSlotRequest {
        referral_id: longest.id.clone(),
        from_date: "2026-06-01".into(),
        to_date: "2026-06-30".into(),
        ..Default::default()
    }))
    .await;
    assert_eq!(best.candidates[0].slot.as_ref().unwrap().id, held.id);

    // Bo is booked elsewhere: the hold ends, and the slot is anyone's.
    app.book(&elsewhere.id, &bo, &longest.id).await.unwrap();
    let freed = app.get_slot(&held.id).await;
    assert_eq!(freed.state(), pb::SlotState::Free);
    assert!(freed.held_for_referral_id.is_empty());
    let walk_in = app.book(&held.id, &patient(), "").await.unwrap();
    app.cancel(&walk_in.id, pb::CancelledBy::Patient, "moving away")
        .await
        .unwrap();

    // Offered to Cy, who is then removed from the list: the hold ends too.
    let offered = offer(&mut app, &held.id).await.unwrap();
    assert_eq!(offered.referral.unwrap().id, next.id);
    app.remove_referral(&next.id, "treated elsewhere")
        .await
        .unwrap();
    let freed = app.get_slot(&held.id).await;
    assert_eq!(freed.state(), pb::SlotState::Free);
    assert!(freed.held_for_referral_id.is_empty());
    app.book(&held.id, &patient(), "").await.unwrap();

    // A slot is never held for a referral no longer waiting.
    let spare = day_slot(&mut app, &clinic, "2026-06-02", 1).await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp();
    let refused = medsec_scheduling::store::optimise::hold(
        &app.db,
        uuid::Uuid::parse_str(&spare.id).unwrap(),
        uuid::Uuid::parse_str(&next.id).unwrap(),
        until,
        &Actor::named("scheduling", "OfferFreedSlot", "w.list"),
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("removed"), "{refused}");
    assert_eq!(app.get_slot(&spare.id).await.state(), pb::SlotState::Free);
}

async fn a_displaced_appointment_is_moved_once(backend: Backend) {
    use medsec_scheduling::domain::allocation::Terms;
    use medsec_scheduling::domain::displacement::{Displacement, PlannedMove};
    use medsec_scheduling::store::optimise::rebook;

    let mut app = spawn_app(backend).await;
    let clinic = app.clinic().await;
    let on_leave = day_slot(&mut app, &clinic, "2026-06-01", 2).await;
    let spares = [
        day_slot(&mut app, &clinic, "2026-06-08", 1).await,
        day_slot(&mut app, &clinic, "2026-06-15", 1).await,
        day_slot(&mut app, &clinic, "2026-06-22", 1).await,
    ];
    let (ada, bo) = (patient(), patient());
    let first = referral(&mut app, &ada, pb::Priority::Urgent, "2026-05-20").await;
    let second = referral(&mut app, &bo, pb::Priority::Routine, "2026-04-01").await;
    let a = app.book(&on_leave.id, &ada, &first.id).await.unwrap();
    let b = app.book(&on_leave.id, &bo, &second.id).await.unwrap();
    let a_id = uuid::Uuid::parse_str(&a.id).unwrap();
    let actor = Actor::named("scheduling", "RebookDisplaced", "w.list");
    let stale = rebook::find(&app.db, &Displacement::Appointments(vec![a_id]), &actor)
        .await
        .unwrap()
        .remove(0);
    let absence = sick_on_1_june(&mut app, &clinic.clinician).await;
    let request = rebook_in_june(&absence.id, &[]);
    // Several runs at once: one takes the lock, the others are refused or
    // find nothing left; each appointment is moved exactly once.
    let calls = (0..4).map(|_| {
        let mut client = app.client.clone();
        let request = request.clone();
        async move { client.rebook_displaced(request).await }
    });
    let mut moved = Vec::new();
    for result in futures::future::join_all(calls).await {
        match result {
            Ok(reply) => moved.extend(reply.into_inner().moves),
            Err(status) => assert_precondition(&status, "being optimised"),
        }
    }
    moved.extend(rebook(&mut app, request).await.unwrap().moves);
    let mut from: Vec<&str> = moved
        .iter()
        .map(|m| m.from_appointment_id.as_str())
        .collect();
    from.sort();
    let mut expected = vec![a.id.as_str(), b.id.as_str()];
    expected.sort();
    assert_eq!(from, expected, "{moved:?}");
    assert_eq!(app.get_slot(&on_leave.id).await.booked, 0);
    let mut taken = 0;
    for spare in &spares {
        taken += app.get_slot(&spare.id).await.booked;
    }
    assert_eq!(taken, 2);

    // A move planned from where the appointment was before it was moved is
    // not applied again.
    let now_in = moved
        .iter()
        .find(|m| m.from_appointment_id == a.id)
        .unwrap()
        .to_slot_id
        .clone();
    let free = spares
        .iter()
        .find(|s| s.id != now_in && moved.iter().all(|m| m.to_slot_id != s.id))
        .unwrap();
    let planned = PlannedMove {
        from: stale,
        to_slot: uuid::Uuid::parse_str(&free.id).unwrap(),
        terms: Terms {
            wait_days: 0,
            breach: false,
            preference_missed: false,
            cost: 0,
        },
    };
    let results = rebook::apply_moves(&app.db, &[planned], &actor)
        .await
        .unwrap();
    let reason = results[0].as_ref().unwrap_err();
    assert!(reason.contains("moved meanwhile"), "{reason}");
    let unmoved = appointment(&mut app, &a.id).await;
    assert_eq!(unmoved.slot_id, now_in);
    assert_eq!(app.get_slot(&free.id).await.booked, 0);
    assert_eq!(app.get_slot(&now_in).await.booked, 1);
}
