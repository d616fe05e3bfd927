//! Retryable database faults (PostgreSQL only: a trigger raises them) reach
//! the client as ABORTED or UNAVAILABLE, never INTERNAL, and change nothing;
//! the same request, retried once the fault is gone, takes effect once.

use std::collections::BTreeMap;

use medsec_platform::testing::{Backend, RETRYABLE_FAULTS, fault_then_retry};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::helpers::{TestApp, new_id, self_pay, spawn_app};

/// RecordPayment writes the invoice's balance, then the payment: a fault on
/// the payment takes the balance and the claimed request_id back with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_hit_by_a_retryable_fault_changes_nothing_and_a_retry_records_it_once() {
    let mut app = spawn_app(Backend::Postgres).await;
    let db = app.db.clone();
    app.price("CONS", 20_000, 0, "2026-01-01").await;
    for (fault, code) in RETRYABLE_FAULTS {
        let patient = new_id();
        app.charge(&patient, "CONS", 1, self_pay()).await;
        let draft = app.draft(&patient, self_pay()).await;
        let invoice = app.issue(&draft.id, "2026-05-06").await;
        let request_id = format!("till-7-{fault:?}");
        let paid = fault_then_retry(
            &mut app,
            &db,
            "payments",
            (fault, code),
            state,
            async |app| app.try_pay(&invoice.id, 3_000, &request_id).await,
        )
        .await;
        assert_eq!(paid.balance_pence, invoice.balance_pence - 3_000);
        assert_eq!(paid.payments.len(), 1);
    }
}

/// CreateCharge is one statement without a transaction of its own: a fault
/// on it stores nothing, and the caller's blind retry charges once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_hit_by_a_retryable_fault_stores_nothing_and_a_retry_charges_once() {
    let mut app = spawn_app(Backend::Postgres).await;
    let db = app.db.clone();
    app.price("CONS", 20_000, 0, "2026-01-01").await;
    for (fault, code) in RETRYABLE_FAULTS {
        let (appointment, patient) = (new_id(), new_id());
        let charge = fault_then_retry(
            &mut app,
            &db,
            "charges",
            (fault, code),
            state,
            async |app| {
                app.try_charge(&appointment, &patient, "CONS", 1, self_pay())
                    .await
            },
        )
        .await;
        assert_eq!(charge.appointment_id, appointment);
    }
}

/// The rows of every table a payment or a charge writes, and what the
/// invoices are owed.
async fn state(app: &mut TestApp) -> BTreeMap<&'static str, i64> {
    let names = [
        "charges",
        "payments",
        "billing_idempotency_keys",
        "balances",
    ];
    let sql = "SELECT (SELECT COUNT(*) FROM charges), (SELECT COUNT(*) FROM payments), \
               (SELECT COUNT(*) FROM billing_idempotency_keys), \
               (SELECT COALESCE(SUM(total_pence - paid_pence - credited_pence), 0)::bigint \
                FROM invoices)";
    let row = app
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name, row.try_get_by_index::<i64>(i).unwrap()))
        .collect()
}
