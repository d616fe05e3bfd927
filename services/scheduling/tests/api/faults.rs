//! Retryable database faults reach the client as ABORTED (retry now) or
//! UNAVAILABLE (retry after a pause), never INTERNAL, and leave nothing
//! booked; once the fault clears, the same booking succeeds once.
//! PostgreSQL only: the faults are injected with a trigger on
//! `appointments`.

use medsec_platform::testing::{Backend, Fault, clear_fault, inject_fault};
use medsec_proto::scheduling::v1 as pb;
use medsec_scheduling::store::entities::appointment;
use sea_orm::{EntityTrait as _, PaginatorTrait as _};
use tonic::Code;

use crate::helpers::{TestApp, patient, spawn_app};
use crate::optimise::{allocations, commit, day_slot, propose, referral};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialisation_failure_is_aborted() {
    a_fault_books_nothing_until_it_clears(Fault::SerializationFailure, Code::Aborted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_is_aborted() {
    a_fault_books_nothing_until_it_clears(Fault::Deadlock, Code::Aborted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_is_aborted() {
    a_fault_books_nothing_until_it_clears(Fault::LockTimeout, Code::Aborted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_backend_is_unavailable() {
    a_fault_books_nothing_until_it_clears(Fault::TerminatedBackend, Code::Unavailable).await;
}

async fn a_fault_books_nothing_until_it_clears(fault: Fault, code: Code) {
    let mut app = spawn_app(Backend::Postgres).await;
    assert_eq!(app.running.backend, Backend::Postgres);
    let clinic = app.clinic().await;
    let slot = app
        .slot(&clinic, "2026-06-01T09:00:00Z", "2026-06-01T09:30:00Z", 1)
        .await;
    let request = pb::BookAppointmentRequest {
        slot_id: slot.id.clone(),
        patient_id: patient(),
        referral_id: String::new(),
        reason: "breathless on stairs".into(),
        request_id: "book-once".into(),
    };

    inject_fault(&app.db, "appointments", fault).await;
    let status = app.book_with(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), code, "{fault:?}: {status:?}");
    assert_booked(&mut app, &slot.id, 0).await;

    clear_fault(&app.db, "appointments").await;
    let booked = app.book_with(request.clone()).await.unwrap();
    let retried = app.book_with(request).await.unwrap();
    assert_eq!(retried.id, booked.id, "the retry replays the booking");
    assert_booked(&mut app, &slot.id, 1).await;
}

/// The slot's places taken and the appointment rows both say `count`.
async fn assert_booked(app: &mut TestApp, slot_id: &str, count: i32) {
    assert_eq!(app.get_slot(slot_id).await.booked, count);
    let rows = appointment::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(rows, u64::try_from(count).unwrap());
}

/// A commit that meets a passing fault answers with it and stores no
/// refusal: the allocations stay open, and the commit's retry books them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_fault_during_a_commit_is_never_stored_as_a_refusal() {
    for (fault, code) in [
        (Fault::Deadlock, Code::Aborted),
        (Fault::TerminatedBackend, Code::Unavailable),
    ] {
        let mut app = spawn_app(Backend::Postgres).await;
        let clinic = app.clinic().await;
        day_slot(&mut app, &clinic, "2026-06-01", 1).await;
        day_slot(&mut app, &clinic, "2026-06-02", 1).await;
        for clock_start in ["2026-01-05", "2026-02-05"] {
            referral(&mut app, &patient(), pb::Priority::Routine, clock_start).await;
        }
        let proposal = propose(&mut app, "2026-06-01", "2026-06-30").await.unwrap();
        assert_eq!(proposal.referrals_allocated, 2);

        inject_fault(&app.db, "appointments", fault).await;
        let status = app
            .client
            .commit_proposal(pb::CommitProposalRequest {
                id: proposal.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{fault:?}: {status:?}");
        let open = allocations(&mut app, &proposal.id).await;
        assert!(
            open.iter()
                .all(|a| a.appointment_id.is_empty() && a.not_booked_reason.is_empty()),
            "{fault:?} left a refusal or a booking: {open:?}"
        );

        clear_fault(&app.db, "appointments").await;
        let committed = commit(&mut app, &proposal.id).await;
        assert_eq!(committed.booked, 2, "{fault:?}");
        assert!(committed.not_booked.is_empty(), "{fault:?}");
    }
}
