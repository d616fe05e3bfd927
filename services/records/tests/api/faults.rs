//! Retryable database faults (PostgreSQL only: a trigger raises them) reach
//! the client as ABORTED or UNAVAILABLE, never INTERNAL, and change nothing;
//! the same request, retried once the fault is gone, takes effect once.

use medsec_platform::audit::entities::event::{Column, Entity as AuditEvents};
use medsec_platform::testing::{
    Backend, RETRYABLE_FAULTS, clear_fault, fault_then_retry, inject_fault,
};
use medsec_proto::records::v1 as pb;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::{TestApp, patient, spawn_app, test_nhs_number};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_hit_by_a_retryable_fault_stores_nothing_and_a_retry_registers_once() {
    let mut app = spawn_app(Backend::Postgres).await;
    let db = app.db.clone();
    for (n, (fault, code)) in (1..).zip(RETRYABLE_FAULTS) {
        let request = pb::CreatePatientRequest {
            patient: Some(patient(&test_nhs_number(n), "Ada", "Lovelace")),
            request_id: format!("register-{fault:?}"),
        };
        fault_then_retry(
            &mut app,
            &db,
            "patients",
            (fault, code),
            async |_| (),
            async |app| {
                let created = app.client.create_patient(request.clone()).await;
                created.map(tonic::Response::into_inner)
            },
        )
        .await;
    }
}

/// GetPatient answers only once its audit event is committed (with other
/// reads' events, by the group commit): when that write fails, the read
/// fails with it, as retryable (and the failure's own event cannot be
/// written either while the fault lasts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audited_read_hit_by_a_retryable_fault_is_refused_as_retryable_and_unrecorded() {
    let mut app = spawn_app(Backend::Postgres).await;
    let id = app.patient_id(1).await;
    let get = pb::GetPatientRequest { id: id.clone() };
    for (fault, code) in RETRYABLE_FAULTS {
        inject_fault(&app.db, "audit_trail", fault).await;
        let status = app.client.get_patient(get.clone()).await.unwrap_err();
        assert_eq!(status.code(), code, "{fault:?}: {status:?}");
        clear_fault(&app.db, "audit_trail").await;
    }
    assert_eq!(reads_recorded(&app).await, 0, "failed reads record nothing");
    app.client.get_patient(get).await.unwrap();
    assert_eq!(reads_recorded(&app).await, 1);
}

async fn reads_recorded(app: &TestApp) -> u64 {
    AuditEvents::find()
        .filter(Column::Method.eq("GetPatient"))
        .filter(Column::Outcome.eq("ok"))
        .count(&app.db)
        .await
        .unwrap()
}
