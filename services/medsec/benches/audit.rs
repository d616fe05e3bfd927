//! What auditing costs: a write transaction that records one event against
//! the same transaction recording none, a list page of 100 patients
//! recorded at once, and concurrent writers appending to their own
//! patients' chains against all appending to one chain (what an unsharded
//! trail would do), on SQLite and PostgreSQL.
//!
//! `cargo bench -p medsec --bench audit` (PostgreSQL at
//! `MEDSEC_TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/postgres).
//! Prints Markdown tables for docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks may panic

use std::time::{Duration, Instant};

use medsec_platform::audit::{self, Access, Actor};
use medsec_platform::db::begin_write;
use medsec_platform::testing::{Backend, TestDatabase};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

/// Transactions per sequential measurement.
const SEQUENTIAL: u32 = 500;
/// Concurrent writers, and transactions each.
const WRITERS: usize = 16;
const EACH: u32 = 100;

fn actor() -> Actor {
    Actor::named("records", "GetPatient", "bench")
}

/// One write transaction that touches a row, as an audited read's does, and
/// records `accesses`.
async fn transaction(db: &DatabaseConnection, accesses: Vec<Access>) {
    let txn = begin_write(db).await.unwrap();
    txn.execute_unprepared("UPDATE bench_rows SET n = n + 1 WHERE id = 1")
        .await
        .unwrap();
    audit::record(&txn, &actor(), accesses).await.unwrap();
    txn.commit().await.unwrap();
}

fn patient(id: Uuid) -> Access {
    Access::patient(format!("patients/{id}"), id)
}

fn per_call(elapsed: Duration, calls: u32) -> f64 {
    elapsed.as_secs_f64() * 1000.0 / f64::from(calls)
}

async fn sequential(db: &DatabaseConnection) -> [f64; 4] {
    let time = async |make: &dyn Fn(u32) -> Vec<Access>| {
        let started = Instant::now();
        for n in 0..SEQUENTIAL {
            transaction(db, make(n)).await;
        }
        per_call(started.elapsed(), SEQUENTIAL)
    };
    let none = time(&|_| Vec::new()).await;
    let new_chain = time(&|_| vec![patient(Uuid::now_v7())]).await;
    let known: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
    for id in &known {
        transaction(db, vec![patient(*id)]).await;
    }
    let known_chain = time(&|n| vec![patient(known[n as usize % known.len()])]).await;
    let page = time(&|_| (0..100).map(|_| patient(Uuid::now_v7())).collect()).await;
    [none, new_chain, known_chain, page]
}

/// Transactions per second of `WRITERS` concurrent writers, each appending
/// to the chains `chain_of(writer)` names.
async fn concurrent(db: &DatabaseConnection, shared: bool) -> f64 {
    let one = Uuid::now_v7();
    let started = Instant::now();
    let writers = (0..WRITERS).map(|_| {
        let db = db.clone();
        let own = Uuid::now_v7();
        tokio::spawn(async move {
            for _ in 0..EACH {
                let id = if shared { one } else { own };
                let txn = begin_write(&db).await.unwrap();
                audit::record(&txn, &actor(), [patient(id)]).await.unwrap();
                txn.commit().await.unwrap();
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    let calls = u32::try_from(WRITERS).unwrap() * EACH;
    f64::from(calls) / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    println!(
        "| backend | no event (ms) | 1 event, new chain (ms) | 1 event, known chain (ms) | 100 events (ms) | {WRITERS} writers, own chains (txn/s) | {WRITERS} writers, one chain (txn/s) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let database = TestDatabase::create(backend).await;
        let mut settings = database.settings();
        settings.database.max_connections = u32::try_from(WRITERS).unwrap() + 2;
        let db = medsec_platform::db::connect(&settings.database)
            .await
            .unwrap();
        medsec::migrate(&db, &medsec::resolve(&[])).await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)",
        )
        .await
        .unwrap();
        db.execute_unprepared("INSERT INTO bench_rows (id, n) VALUES (1, 0)")
            .await
            .unwrap();
        let [none, new_chain, known_chain, page] = sequential(&db).await;
        let own = concurrent(&db, false).await;
        let shared = concurrent(&db, true).await;
        let report = audit::verify(&db).await.unwrap();
        assert!(report.intact(), "{report}");
        println!(
            "| {backend:?} | {none:.2} | {new_chain:.2} | {known_chain:.2} | {page:.1} | {own:.0} | {shared:.0} |"
        );
        db.close().await.ok();
    }
}
