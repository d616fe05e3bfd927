//! Retryable database faults (PostgreSQL only: a trigger raises them) reach
//! the client as ABORTED or UNAVAILABLE, never INTERNAL, and change nothing;
//! the same request, retried once the fault is gone, takes effect once.

use medsec_billing::store::entities::{charge, payment};
use medsec_platform::testing::{Backend, Fault, clear_fault, inject_fault};
use medsec_proto::billing::v1 as pb;
use sea_orm::{EntityTrait, PaginatorTrait};
use tonic::Code;

use crate::helpers::{TestApp, new_id, self_pay, spawn_app};

const FAULTS: [(Fault, Code); 4] = [
    (Fault::SerializationFailure, Code::Aborted),
    (Fault::Deadlock, Code::Aborted),
    (Fault::LockTimeout, Code::Aborted),
    (Fault::TerminatedBackend, Code::Unavailable),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialisation_failure_aborts_a_payment_which_a_retry_records_once() {
    payment_meets(Fault::SerializationFailure, Code::Aborted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_aborts_a_payment_which_a_retry_records_once() {
    payment_meets(Fault::Deadlock, Code::Aborted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_aborts_a_payment_which_a_retry_records_once() {
    payment_meets(Fault::LockTimeout, Code::Aborted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_backend_leaves_a_payment_unavailable_and_a_retry_records_it_once() {
    payment_meets(Fault::TerminatedBackend, Code::Unavailable).await;
}

/// RecordPayment writes the invoice's balance, then the payment: a fault on
/// the payment must take the balance and the claimed request_id back too.
async fn payment_meets(fault: Fault, code: Code) {
    let mut app = spawn_app(Backend::Postgres).await;
    let invoice = issued_invoice(&mut app).await;

    inject_fault(&app.db, "payments", fault).await;
    let status = app
        .try_pay(&invoice.id, 3_000, "till-7-0042")
        .await
        .unwrap_err();
    assert_eq!(status.code(), code, "{fault:?}: {status:?}");
    assert_eq!(
        app.get(&invoice.id).await,
        invoice,
        "{fault:?} changed nothing"
    );
    assert_eq!(payment::Entity::find().count(&app.db).await.unwrap(), 0);

    clear_fault(&app.db, "payments").await;
    for _ in 0..2 {
        let paid = app
            .try_pay(&invoice.id, 3_000, "till-7-0042")
            .await
            .unwrap();
        assert_eq!(paid.balance_pence, invoice.balance_pence - 3_000);
        assert_eq!(paid.payments.len(), 1);
    }
    assert_eq!(payment::Entity::find().count(&app.db).await.unwrap(), 1);
}

/// CreateCharge is one statement without a transaction of its own: a fault
/// on it stores nothing, and the caller's blind retry charges once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_hit_by_a_retryable_fault_stores_nothing_and_a_retry_charges_once() {
    let mut app = spawn_app(Backend::Postgres).await;
    app.price("CONS", 20_000, 0, "2026-01-01").await;
    let patient = new_id();
    for (stored, (fault, code)) in (1..).zip(FAULTS) {
        let appointment = new_id();
        inject_fault(&app.db, "charges", fault).await;
        let status = app
            .try_charge(&appointment, &patient, "CONS", 1, self_pay())
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{fault:?}: {status:?}");
        assert_eq!(
            charge::Entity::find().count(&app.db).await.unwrap(),
            stored - 1,
            "{fault:?} stored nothing"
        );

        clear_fault(&app.db, "charges").await;
        let first = app
            .try_charge(&appointment, &patient, "CONS", 1, self_pay())
            .await
            .unwrap();
        let again = app
            .try_charge(&appointment, &patient, "CONS", 1, self_pay())
            .await
            .unwrap();
        assert_eq!(again.id, first.id);
        assert_eq!(charge::Entity::find().count(&app.db).await.unwrap(), stored);
    }
}

/// An issued invoice of 20,000 pence, unpaid.
async fn issued_invoice(app: &mut TestApp) -> pb::Invoice {
    app.price("CONS", 20_000, 0, "2026-01-01").await;
    let patient = new_id();
    app.charge(&patient, "CONS", 1, self_pay()).await;
    let draft = app.draft(&patient, self_pay()).await;
    app.issue(&draft.id, "2026-05-06").await
}
