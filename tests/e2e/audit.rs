//! One audit trail for the whole suite: records, scheduling and billing
//! append to the same hash chains from concurrent calls, the chains verify,
//! and a row a superuser changes or removes behind the triggers' backs is
//! reported exactly; on PostgreSQL the runtime role may only read and append
//! to the trail.

use futures::future::join_all;
use medsec_platform::audit::entities::event;
use medsec_platform::audit::verify::BreakKind;
use medsec_platform::audit::{self, Report};
use medsec_platform::auth::Role;
use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, Caller, TestDatabase};
use medsec_proto::billing::v1 as billing;
use medsec_proto::billing::v1::billing_service_client::BillingServiceClient;
use medsec_proto::records::v1 as records;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tonic::Code;

use crate::fixtures::{charge, nhs_number, price, referral, registration, self_pay};
use crate::harness::{Suite, start};

both_backends!(
    chains_hold_under_concurrent_calls_and_a_changed_or_removed_event_is_named,
    scheduling_and_billing_accesses_are_on_the_trail,
);

/// Patients worked on at once.
const PATIENTS: u32 = 8;

async fn price_list(suite: &Suite) {
    BillingServiceClient::new(suite.channel.clone())
        .create_price_item(price("CARD-NEW", "New cardiology consultation", 25_000))
        .await
        .unwrap();
}

/// One patient's day across the suite, every call audited: registered,
/// read, referred, the referral read and searched, charged, the charges
/// listed; and one call refused and one failing.
async fn a_patients_day(suite: &Suite, n: u32) -> String {
    let mut records = RecordsServiceClient::new(suite.channel.clone());
    let mut scheduling = SchedulingServiceClient::new(suite.channel.clone());
    let mut billing = BillingServiceClient::new(suite.channel.clone());
    let registration = registration(&nhs_number(n), "Pat", &format!("Ient{n}"), "1970-01-31", "");
    let patient = records
        .create_patient(registration)
        .await
        .unwrap()
        .into_inner();
    for _ in 0..3 {
        records
            .get_patient(records::GetPatientRequest {
                id: patient.id.clone(),
            })
            .await
            .unwrap();
    }
    let referral = scheduling
        .create_referral(referral(&patient.id, chrono::Duration::weeks(4)))
        .await
        .unwrap()
        .into_inner();
    scheduling
        .get_referral(scheduling::GetReferralRequest {
            id: referral.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    scheduling
        .list_referrals(scheduling::ListReferralsRequest {
            patient_id: patient.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let appointment = uuid::Uuid::now_v7().to_string();
    billing
        .create_charge(charge(&appointment, &patient.id, "CARD-NEW", "2026-06-01"))
        .await
        .unwrap();
    billing
        .list_charges(billing::ListChargesRequest {
            patient_id: patient.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // A billing clerk may not read the patient's summary: denied.
    let clerk = Caller::staff(&format!("clerk.{n}"), &[Role::BillingClerk]);
    let status = RecordsServiceClient::new(suite.channel_as(&clerk))
        .get_patient_summary(records::GetPatientSummaryRequest {
            patient_id: patient.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // No such invoice: failed.
    let status = billing
        .get_invoice(billing::GetInvoiceRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    patient.id
}

/// Changes one row of the trail as a superuser would, behind the triggers'
/// backs: with the trigger disabled (PostgreSQL) or dropped (SQLite). Rows
/// are named by chain and seq (SQLite keeps ids as blobs).
async fn as_superuser(db: &DatabaseConnection, backend: Backend, trigger: &str, statement: &str) {
    match backend {
        Backend::Postgres => {
            db.execute_unprepared(&format!(
                "ALTER TABLE audit_trail DISABLE TRIGGER USER; {statement}; \
                 ALTER TABLE audit_trail ENABLE TRIGGER USER"
            ))
            .await
            .unwrap();
        }
        Backend::Sqlite => {
            db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                .await
                .unwrap();
            db.execute_unprepared(statement).await.unwrap();
        }
    }
}

async fn event_at(db: &DatabaseConnection, chain: &str, seq: i64) -> event::Model {
    event::Entity::find()
        .filter(event::Column::Chain.eq(chain))
        .filter(event::Column::Seq.eq(seq))
        .one(db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no event {seq} in {chain}"))
}

async fn verified(db: &DatabaseConnection) -> Report {
    audit::verify(db).await.unwrap()
}

async fn chains_hold_under_concurrent_calls_and_a_changed_or_removed_event_is_named(
    backend: Backend,
) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    price_list(&suite).await;
    let patients = join_all((1..=PATIENTS).map(|n| a_patients_day(&suite, n))).await;
    let db = database.connect().await;

    let report = verified(&db).await;
    assert!(report.intact(), "{report}");
    // Per patient: 4 records events and 1 more of scheduling asking records
    // whether the patient is active, 3 scheduling and 2 billing events; then
    // a denial and a failure each, in their hours' chains.
    assert_eq!(report.events, u64::from(PATIENTS) * 12, "{report}");
    for service in ["records", "scheduling", "billing"] {
        for patient in &patients {
            let chain = format!("{service}/patient/{patient}");
            event_at(&db, &chain, 1).await;
        }
    }
    let denied = event::Entity::find()
        .filter(event::Column::Outcome.eq("denied"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(denied.len(), PATIENTS as usize);
    assert!(denied.iter().all(|e| e.method == "GetPatientSummary"
        && e.subject.starts_with("clerk.")
        && e.chain.starts_with("records/GetPatientSummary/")));
    let failed = event::Entity::find()
        .filter(event::Column::Outcome.eq("failed"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(failed.len(), PATIENTS as usize);
    assert!(failed.iter().all(|e| e.method == "GetInvoice"));

    // A superuser changes who read a record: exactly that event is named.
    let chain = format!("records/patient/{}", patients[0]);
    let read = event_at(&db, &chain, 2).await;
    as_superuser(
        &db,
        backend,
        "audit_trail_no_update",
        &format!("UPDATE audit_trail SET subject = 'mallory' WHERE chain = '{chain}' AND seq = 2"),
    )
    .await;
    let report = verified(&db).await;
    assert_eq!(report.break_count, 1, "{report}");
    let found = &report.breaks[0];
    assert_eq!(
        (found.chain.as_str(), found.seq, found.event_id),
        (chain.as_str(), 2, Some(read.id))
    );
    assert!(
        matches!(&found.kind, BreakKind::Altered { recorded, .. } if *recorded == read.hash),
        "{found:?}"
    );
    assert!(
        report.to_string().contains(&read.id.to_string()),
        "{report}"
    );

    // Put back, the chain holds again: the break was that field alone.
    as_superuser(
        &db,
        backend,
        "audit_trail_no_update",
        &format!(
            "UPDATE audit_trail SET subject = '{}' WHERE chain = '{chain}' AND seq = 2",
            read.subject
        ),
    )
    .await;
    assert!(verified(&db).await.intact());

    // A removed event: the next one names the gap.
    let next = event_at(&db, &chain, 3).await;
    as_superuser(
        &db,
        backend,
        "audit_trail_no_delete",
        &format!("DELETE FROM audit_trail WHERE chain = '{chain}' AND seq = 2"),
    )
    .await;
    let report = verified(&db).await;
    assert_eq!(report.break_count, 1, "{report}");
    let found = &report.breaks[0];
    assert_eq!((found.seq, found.event_id), (3, Some(next.id)), "{report}");
    assert_eq!(found.kind, BreakKind::Missing { expected: 2 });

    // The last event of another chain removed: its head disagrees.
    let other = format!("billing/patient/{}", patients[1]);
    event_at(&db, &other, 2).await;
    as_superuser(
        &db,
        backend,
        "audit_trail_no_delete",
        &format!("DELETE FROM audit_trail WHERE chain = '{other}' AND seq = 2"),
    )
    .await;
    let report = verified(&db).await;
    assert_eq!(report.break_count, 2, "{report}");
    let head = report
        .breaks
        .iter()
        .find(|b| b.chain == other)
        .expect("the billing chain's break");
    assert!(
        matches!(
            head.kind,
            BreakKind::HeadDisagrees {
                head_seq: 2,
                last_seq: 1,
                ..
            }
        ),
        "{head:?}"
    );
    db.close().await.ok();
    suite.stop().await;
}

async fn scheduling_and_billing_accesses_are_on_the_trail(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    price_list(&suite).await;
    let patient = a_patients_day(&suite, 1).await;
    let mut billing = BillingServiceClient::new(suite.channel.clone());
    let invoice = billing
        .create_invoice(billing::CreateInvoiceRequest {
            patient_id: patient.clone(),
            payer: Some(self_pay()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    billing
        .get_invoice(billing::GetInvoiceRequest {
            id: invoice.id.clone(),
        })
        .await
        .unwrap();
    // A search that finds nothing is recorded too: it told the caller so.
    let nobody = uuid::Uuid::now_v7().to_string();
    SchedulingServiceClient::new(suite.channel.clone())
        .list_referrals(scheduling::ListReferralsRequest {
            patient_id: nobody,
            ..Default::default()
        })
        .await
        .unwrap();
    let db = database.connect().await;

    let patient_id = uuid::Uuid::parse_str(&patient).unwrap();
    let of_patient = event::Entity::find()
        .filter(event::Column::PatientId.eq(patient_id))
        .all(&db)
        .await
        .unwrap();
    let methods: Vec<(&str, &str)> = of_patient
        .iter()
        .map(|e| (e.service.as_str(), e.method.as_str()))
        .collect();
    for expected in [
        ("scheduling", "CreateReferral"),
        ("scheduling", "GetReferral"),
        ("scheduling", "ListReferrals"),
        ("billing", "CreateCharge"),
        ("billing", "ListCharges"),
        ("billing", "CreateInvoice"),
        ("billing", "GetInvoice"),
    ] {
        assert!(methods.contains(&expected), "{expected:?} in {methods:?}");
    }
    for event in &of_patient {
        if event.subject == "scheduling.in-process" {
            // Scheduling asked records whether the patient may be referred.
            assert_eq!(
                (event.service.as_str(), event.method.as_str()),
                ("records", "GetPatient")
            );
            assert_eq!(event.roles, "service");
            continue;
        }
        assert_eq!(event.subject, "test.user");
        assert_eq!(event.purpose, "direct_care");
        assert_eq!(event.outcome, "ok");
        assert_eq!(event.chain, format!("{}/patient/{patient}", event.service));
        // Searches record their filters' hash, and only searches.
        let search = event.method.starts_with("List") && event.method != "ListAuditEvents";
        assert_eq!(event.filter_hash.is_some(), search, "{event:?}");
    }
    let invoice_read = of_patient
        .iter()
        .find(|e| e.method == "GetInvoice")
        .unwrap();
    assert_eq!(invoice_read.resource, format!("invoices/{}", invoice.id));

    let empty = event::Entity::find()
        .filter(event::Column::Method.eq("ListReferrals"))
        .filter(event::Column::PatientId.is_null())
        .all(&db)
        .await
        .unwrap();
    assert_eq!(empty.len(), 1, "{empty:?}");
    assert_eq!(empty[0].resource, "referrals");
    assert_eq!(empty[0].filter_hash.as_ref().map(String::len), Some(64));
    assert!(verified(&db).await.intact());
    db.close().await.ok();
    suite.stop().await;
}

/// `url` with its user replaced by `user`.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

/// PostgreSQL only: roles are PostgreSQL's. Migrated as the owner with a
/// runtime role named, that role reads and appends to the trail, works the
/// services' tables, and is refused UPDATE, DELETE and TRUNCATE of the trail
/// by privilege; the owner is refused them by the triggers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_role_may_only_read_and_append_to_the_trail() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let role = format!("medsec_runtime_{}", uuid::Uuid::now_v7().simple());
    let owner = database.connect().await;
    owner
        .execute_unprepared(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .unwrap();
    let mut settings = database.settings();
    settings.database.migration_url = Some(database.url.clone().into());
    settings.database.url = as_user(&database.url, &role).into();
    settings.database.runtime_role = Some(role.clone());
    medsec::migrate_as_owner(&settings.database, &medsec::resolve(&[]))
        .await
        .unwrap();
    // Again: migrating and granting are idempotent.
    medsec::migrate_as_owner(&settings.database, &medsec::resolve(&[]))
        .await
        .unwrap();

    let runtime = medsec_platform::db::connect(&settings.database)
        .await
        .unwrap();
    // Appending works: the event and its chain's head.
    let actor = audit::Actor::named("records", "GetPatient", "s.jones");
    let patient = uuid::Uuid::now_v7();
    for _ in 0..2 {
        let txn = medsec_platform::db::begin_write(&runtime).await.unwrap();
        let access = audit::Access::patient(format!("patients/{patient}"), patient);
        audit::record(&txn, &actor, [access]).await.unwrap();
        txn.commit().await.unwrap();
    }
    assert!(verified(&runtime).await.intact());
    // The services' tables are the runtime role's to work.
    for statement in [
        "SELECT count(*) FROM patients",
        "UPDATE appointments SET revision = revision WHERE false",
        "DELETE FROM invoice_lines WHERE false",
    ] {
        runtime
            .execute_unprepared(statement)
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
    // The trail is not, beyond reading and appending.
    for statement in [
        "UPDATE audit_trail SET subject = 'mallory'",
        "DELETE FROM audit_trail",
        "TRUNCATE audit_trail",
        "DELETE FROM audit_chain_heads",
        "TRUNCATE audit_chain_heads",
        "UPDATE audit_events SET actor = 'mallory'",
    ] {
        let error = runtime.execute_unprepared(statement).await.unwrap_err();
        assert!(
            error.to_string().contains("permission denied"),
            "{statement}: {error}"
        );
    }
    runtime.close().await.ok();
    // The owner has the privileges; the triggers refuse.
    for statement in [
        "UPDATE audit_trail SET subject = 'mallory'",
        "TRUNCATE audit_trail",
    ] {
        let error = owner.execute_unprepared(statement).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(verified(&owner).await.events, 2);
    owner
        .execute_unprepared(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
    owner.close().await.ok();
}
