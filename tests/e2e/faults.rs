//! Faults survived with nothing lost: PostgreSQL backends are terminated
//! (`pg_terminate_backend`, as a failover or an administrator would) again
//! and again in the middle of a booking, invoicing and payment workload.
//! Clients see only `UNAVAILABLE` or `ABORTED` for the faults, and retry as
//! the README says; the server recovers without a restart; afterwards every
//! acknowledged booking and payment is present exactly once, no slot is over
//! capacity, no patient is booked twice at once, and invoice numbers have no
//! gap.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use medsec_platform::testing::{AuthChannel, Backend, TestDatabase};
use medsec_platform::time::{format_civil_date, today_in_london};
use medsec_proto::billing::v1 as billing;
use medsec_proto::billing::v1::billing_service_client::BillingServiceClient;
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tonic::{Code, Status};

use crate::fixtures::{charge, clinic, price, registered, self_pay};
use crate::harness::{Suite, start};

/// How long the faults go on.
const STORM: Duration = Duration::from_secs(4);
/// Attempts a client makes before giving up on a retryable fault.
const ATTEMPTS: u32 = 60;

/// Calls `call` until it answers something other than a retryable fault
/// (`UNAVAILABLE`, `ABORTED`), counting the faults seen. Any other answer,
/// success or refusal, is final.
async fn retrying<T, F, Fut>(faults: &AtomicUsize, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
{
    let mut last = Status::unavailable("never tried");
    for attempt in 0..ATTEMPTS {
        match call().await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if matches!(status.code(), Code::Unavailable | Code::Aborted) => {
                faults.fetch_add(1, Ordering::Relaxed);
                last = status;
                tokio::time::sleep(Duration::from_millis(10 + 10 * u64::from(attempt.min(10))))
                    .await;
            }
            Err(status) => {
                assert_ne!(
                    status.code(),
                    Code::Internal,
                    "a fault reached a client as INTERNAL: {status:?}"
                );
                assert_ne!(
                    status.code(),
                    Code::Unknown,
                    "a fault reached a client as UNKNOWN: {status:?}"
                );
                return Err(status);
            }
        }
    }
    Err(last)
}

/// Terminates every other backend of the test database, again and again,
/// until told to stop.
async fn terminate_backends(admin: DatabaseConnection, stop: Arc<AtomicBool>) -> usize {
    let mut terminated = 0;
    while !stop.load(Ordering::Relaxed) {
        let rows = admin
            .query_all_raw(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            ))
            .await
            .expect("terminate backends");
        terminated += rows.len();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    terminated
}

/// Charges an encounter, invoices it and issues the invoice, retrying every
/// step through faults; the issued invoice's id, or `None` when a retry
/// exhausted its attempts.
async fn issued_invoice(
    billing: &mut BillingServiceClient<AuthChannel>,
    faults: &AtomicUsize,
    n: usize,
) -> Option<String> {
    let patient = uuid::Uuid::now_v7().to_string();
    let appointment = uuid::Uuid::now_v7().to_string();
    let today = format_civil_date(today_in_london());
    let charge = charge(&appointment, &patient, "CONS", &today);
    retrying(faults, || {
        let (mut client, request) = (billing.clone(), charge.clone());
        async move { client.create_charge(request).await }
    })
    .await
    .ok()?;
    let create = billing::CreateInvoiceRequest {
        patient_id: patient,
        payer: Some(self_pay()),
        request_id: format!("invoice-{n}-{}", uuid::Uuid::now_v7()),
    };
    let draft = retrying(faults, || {
        let (mut client, request) = (billing.clone(), create.clone());
        async move { client.create_invoice(request).await }
    })
    .await
    .ok()?;
    let issue = billing::IssueInvoiceRequest {
        id: draft.id.clone(),
        ..Default::default()
    };
    // A retry after an issue that committed but whose answer was lost is
    // refused (already issued): the invoice itself says what happened.
    let _ = retrying(faults, || {
        let (mut client, request) = (billing.clone(), issue.clone());
        async move { client.issue_invoice(request).await }
    })
    .await;
    let get = billing::GetInvoiceRequest {
        id: draft.id.clone(),
    };
    let invoice = retrying(faults, || {
        let (mut client, request) = (billing.clone(), get.clone());
        async move { client.get_invoice(request).await }
    })
    .await
    .ok()?;
    (invoice.status() == billing::InvoiceStatus::Issued).then_some(invoice.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_backends_lose_nothing_acknowledged() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let suite: Suite = start(&database.settings(), &[]).await;
    let mut scheduling = SchedulingServiceClient::new(suite.channel.clone());
    let mut billing = BillingServiceClient::new(suite.channel.clone());
    let clinic = clinic(&mut scheduling, 2).await;
    billing
        .create_price_item(price("CONS", "Consultation", 10_000))
        .await
        .unwrap();
    let faults = Arc::new(AtomicUsize::new(0));
    let mut invoices = Vec::new();
    for n in 0..6 {
        invoices.push(issued_invoice(&mut billing, &faults, n).await.unwrap());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let patients = registered(&suite.channel, 1, 30).await;
    let killer = tokio::spawn(terminate_backends(database.connect().await, stop.clone()));
    let slots: Vec<String> = clinic.slots.iter().map(|slot| slot.id.clone()).collect();

    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..6usize {
        let (client, faults, stop) = (scheduling.clone(), faults.clone(), stop.clone());
        let (patients, slots) = (patients.clone(), slots.clone());
        workers.spawn(async move {
            let mut booked = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let book = scheduling::BookAppointmentRequest {
                    slot_id: slots[(worker * 7 + n * 13) % slots.len()].clone(),
                    patient_id: patients[(worker * 5 + n * 3) % patients.len()].clone(),
                    reason: "review".into(),
                    request_id: format!("book-{worker}-{n}"),
                    ..Default::default()
                };
                if let Ok(appointment) = retrying(&faults, || {
                    let (mut client, request) = (client.clone(), book.clone());
                    async move { client.book_appointment(request).await }
                })
                .await
                {
                    booked.push((book.request_id.clone(), appointment.id));
                }
            }
            (booked, Vec::new())
        });
    }
    for worker in 0..3usize {
        let (client, faults, stop) = (billing.clone(), faults.clone(), stop.clone());
        let invoices = invoices.clone();
        workers.spawn(async move {
            let mut paid = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let pay = billing::RecordPaymentRequest {
                    invoice_id: invoices[(worker + n) % invoices.len()].clone(),
                    amount_pence: 100,
                    method: billing::PaymentMethod::Card as i32,
                    paid_on: String::new(),
                    request_id: format!("pay-{worker}-{n}"),
                };
                if retrying(&faults, || {
                    let (mut client, request) = (client.clone(), pay.clone());
                    async move { client.record_payment(request).await }
                })
                .await
                .is_ok()
                {
                    paid.push((pay.request_id.clone(), pay.invoice_id.clone()));
                }
            }
            (Vec::new(), paid)
        });
    }
    let issuing = {
        let (mut client, faults, stop) = (billing.clone(), faults.clone(), stop.clone());
        tokio::spawn(async move {
            let mut issued = 0;
            let mut n = 100;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if issued_invoice(&mut client, &faults, n).await.is_some() {
                    issued += 1;
                }
            }
            issued
        })
    };

    tokio::time::sleep(STORM).await;
    stop.store(true, Ordering::Relaxed);
    let terminated = killer.await.unwrap();
    let mut booked = Vec::new();
    let mut paid = Vec::new();
    while let Some(done) = workers.join_next().await {
        let (b, p) = done.unwrap();
        booked.extend(b);
        paid.extend(p);
    }
    let issued_during = issuing.await.unwrap();
    eprintln!(
        "storm: {terminated} backends terminated, {} faults retried, {} bookings and {} payments \
         acknowledged, {issued_during} invoices issued",
        faults.load(Ordering::Relaxed),
        booked.len(),
        paid.len()
    );
    assert!(terminated > 0, "the storm terminated backends");
    assert!(
        faults.load(Ordering::Relaxed) > 0,
        "clients met faults (and retried them)"
    );
    assert!(
        !booked.is_empty() && !paid.is_empty(),
        "work was acknowledged during the storm"
    );

    // The server recovered without a restart.
    assert!(suite.health("").await.is_ok());
    scheduling
        .list_slots(scheduling::ListSlotsRequest::default())
        .await
        .expect("the server answers after the storm");

    let db = database.connect().await;
    let query = |sql: &str| Statement::from_string(sea_orm::DbBackend::Postgres, sql.to_owned());
    // Every acknowledged booking is there, once.
    let stored: HashSet<String> = db
        .query_all_raw(query("SELECT id::text AS id FROM appointments"))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "id").unwrap())
        .collect();
    let acknowledged: HashSet<&String> = booked.iter().map(|(_, id)| id).collect();
    assert_eq!(
        acknowledged.len(),
        booked.len(),
        "one appointment per acknowledged request"
    );
    for (request, id) in &booked {
        assert!(
            stored.contains(id),
            "acknowledged booking {request} ({id}) is missing"
        );
    }
    // No slot over capacity, its count agreeing with its bookings.
    let over = db
        .query_all_raw(query(
            "SELECT s.id FROM slots s LEFT JOIN appointments a \
             ON a.slot_id = s.id AND a.status IN ('booked', 'arrived', 'fulfilled') \
             GROUP BY s.id, s.capacity, s.booked \
             HAVING COUNT(a.id) > s.capacity OR COUNT(a.id) <> s.booked",
        ))
        .await
        .unwrap();
    assert!(
        over.is_empty(),
        "{} slots over capacity or miscounted",
        over.len()
    );
    // No patient in two places at once.
    let double = db
        .query_all_raw(query(
            "SELECT a.id FROM appointments a JOIN appointments b \
             ON a.patient_id = b.patient_id AND a.id < b.id \
             AND a.start_at < b.end_at AND b.start_at < a.end_at \
             WHERE a.status = 'booked' AND b.status = 'booked'",
        ))
        .await
        .unwrap();
    assert!(double.is_empty(), "{} patients double-booked", double.len());
    // Every acknowledged payment is there, once; balances agree with them.
    let payments = db
        .query_all_raw(query(
            "SELECT k.request_id, p.invoice_id::text AS invoice_id FROM billing_idempotency_keys k \
             JOIN payments p ON p.id::text = k.resource_id WHERE k.scope = 'RecordPayment'",
        ))
        .await
        .unwrap();
    let recorded: BTreeSet<(String, String)> = payments
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "request_id").unwrap(),
                row.try_get::<String>("", "invoice_id").unwrap(),
            )
        })
        .collect();
    assert_eq!(recorded.len(), payments.len(), "one payment per key");
    for payment in &paid {
        assert!(
            recorded.contains(payment),
            "acknowledged payment {payment:?} is missing"
        );
    }
    let disagreeing = db
        .query_all_raw(query(
            "SELECT i.id FROM invoices i LEFT JOIN payments p ON p.invoice_id = i.id \
             GROUP BY i.id, i.paid_pence HAVING COALESCE(SUM(p.amount_pence), 0) <> i.paid_pence",
        ))
        .await
        .unwrap();
    assert!(disagreeing.is_empty(), "balances disagree with payments");
    // Invoice numbers run without a gap.
    let numbers: Vec<String> = db
        .query_all_raw(query(
            "SELECT number FROM invoices WHERE number IS NOT NULL ORDER BY number",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "number").unwrap())
        .collect();
    assert!(numbers.len() >= invoices.len() + issued_during);
    let sequence: Vec<u32> = numbers
        .iter()
        .map(|number| number.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<u32> = (1..=u32::try_from(sequence.len()).unwrap()).collect();
    assert_eq!(sequence, expected, "invoice numbers {numbers:?}");
    suite.stop().await;
}
