//! `medsec audit verify`, the binary, on a real database of each backend:
//! a summary and success on an intact trail; after a superuser changes one
//! event behind the triggers' backs, a failure naming exactly that event.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::process::{Command, Output};

use medsec_platform::audit::{self, Access, Actor};
use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, TestDatabase};
use sea_orm::ConnectionTrait;

both_backends!(verify_summarises_an_intact_trail_and_names_a_changed_event);

fn verify(url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medsec"))
        .args(["audit", "verify", "--database", url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run medsec")
}

async fn verify_summarises_an_intact_trail_and_names_a_changed_event(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    medsec::migrate(&db, &medsec::resolve(&[])).await.unwrap();
    let patients: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    for method in ["CreatePatient", "GetPatient", "UpdatePatient"] {
        let actor = Actor::named("records", method, "s.jones");
        let txn = medsec_platform::db::begin_write(&db).await.unwrap();
        let accesses = patients
            .iter()
            .map(|id| Access::patient(format!("patients/{id}"), *id));
        audit::record(&txn, &actor, accesses).await.unwrap();
        txn.commit().await.unwrap();
    }

    let intact = verify(&database.url);
    let stdout = String::from_utf8_lossy(&intact.stdout);
    assert!(intact.status.success(), "{intact:?}");
    assert!(
        stdout.contains("audit trail intact: 9 events in 3 chains"),
        "{stdout}"
    );

    let chain = format!("records/patient/{}", patients[1]);
    let changed: String = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT id FROM audit_trail WHERE chain = '{chain}' AND seq = 2"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<uuid::Uuid>(0)
        .map(|id| id.to_string())
        .unwrap();
    // By chain and seq: SQLite keeps ids as blobs.
    let update = format!(
        "UPDATE audit_trail SET method = 'ListPatients' WHERE chain = '{chain}' AND seq = 2"
    );
    match backend {
        Backend::Postgres => db
            .execute_unprepared(&format!(
                "ALTER TABLE audit_trail DISABLE TRIGGER USER; {update}; \
                 ALTER TABLE audit_trail ENABLE TRIGGER USER"
            ))
            .await
            .unwrap(),
        Backend::Sqlite => {
            db.execute_unprepared("DROP TRIGGER audit_trail_no_update")
                .await
                .unwrap();
            db.execute_unprepared(&update).await.unwrap()
        }
    };

    let broken = verify(&database.url);
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(!broken.status.success(), "{broken:?}");
    assert!(stderr.contains("audit trail broken: 1 breaks"), "{stderr}");
    assert!(
        stderr.contains(&format!("chain {chain} seq 2 (event {changed})")),
        "{stderr}"
    );
    assert!(stderr.contains("changed after it was written"), "{stderr}");
    db.close().await.ok();
}
