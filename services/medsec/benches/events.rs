//! What events cost: a write transaction raising one event against the same
//! transaction raising none, and how fast one relay delivers a backlog —
//! in-process to a consumer writing its inbox row, and to NATS JetStream —
//! on SQLite and PostgreSQL.
//!
//! `cargo bench -p medsec --bench events` (PostgreSQL at
//! `MEDSEC_TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/postgres;
//! NATS with JetStream at 127.0.0.1:4222). Backlog size: `MEDSEC_BENCH_EVENTS`
//! (default 5000). Prints Markdown tables for docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks may panic

use std::sync::Arc;
use std::time::Instant;

use medsec_platform::db::begin_write;
use medsec_platform::events::{self, Consumer, Event, Relay, Transport, pb};
use medsec_platform::testing::{Backend, TestDatabase};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};

/// Transactions per sequential measurement.
const SEQUENTIAL: u32 = 500;

/// A consumer whose effect is nothing but its inbox row.
#[derive(Debug)]
struct Inbox;

#[sea_orm::prelude::async_trait::async_trait]
impl Consumer for Inbox {
    fn name(&self) -> &'static str {
        "bench-inbox"
    }

    fn filter(&self) -> &'static str {
        "medsec.>"
    }

    async fn handle(
        &self,
        _txn: &DatabaseTransaction,
        _event: &pb::Envelope,
    ) -> Result<(), medsec_platform::ApiError> {
        Ok(())
    }
}

fn arrived(n: u64) -> Event {
    let id = uuid::Uuid::now_v7().to_string();
    Event::new(
        format!("appointments/{id}"),
        pb::envelope::Data::AppointmentArrived(pb::AppointmentArrived {
            appointment: Some(pb::AppointmentFacts {
                appointment_id: id,
                patient_id: uuid::Uuid::now_v7().to_string(),
                specialty: format!("specialty-{}", n % 10),
                kind: "new".into(),
                ..Default::default()
            }),
        }),
    )
}

/// Milliseconds per transaction, with and without an event.
async fn raising(db: &DatabaseConnection) -> (f64, f64) {
    db.execute_unprepared("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        .await
        .unwrap();
    db.execute_unprepared("INSERT INTO bench_rows (id, n) VALUES (1, 0)")
        .await
        .unwrap();
    let mut times = [0.0; 2];
    for (i, raise) in [false, true].into_iter().enumerate() {
        let started = Instant::now();
        for n in 0..SEQUENTIAL {
            let txn = begin_write(db).await.unwrap();
            txn.execute_unprepared("UPDATE bench_rows SET n = n + 1 WHERE id = 1")
                .await
                .unwrap();
            if raise {
                events::emit(&*txn, [arrived(u64::from(n))]).await.unwrap();
            }
            txn.commit().await.unwrap();
        }
        times[i] = started.elapsed().as_secs_f64() * 1000.0 / f64::from(SEQUENTIAL);
    }
    (times[0], times[1])
}

/// Events a second one relay delivers of a backlog of `count`.
async fn relaying(
    db: &DatabaseConnection,
    mut settings: medsec_platform::config::EventsSettings,
    transport: Transport,
    count: u64,
) -> f64 {
    settings.batch = 500;
    let txn = begin_write(db).await.unwrap();
    events::emit(&*txn, (0..count).map(arrived)).await.unwrap();
    txn.commit().await.unwrap();
    let relay = Relay::new(db.clone(), vec!["scheduling".into()], settings, transport);
    let started = Instant::now();
    let mut relayed = 0;
    while relayed < count {
        relayed += u64::try_from(relay.round().await.unwrap()).unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let count: u64 = std::env::var("MEDSEC_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    println!(
        "| database | ms per transaction, no event | with one event | relayed in-process, events/s | relayed to JetStream, events/s |"
    );
    println!("|---|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let database = TestDatabase::create(backend).await;
        let db = database.connect().await;
        medsec::migrate(&db, &[medsec::ServiceName::Scheduling])
            .await
            .unwrap();
        let (plain, raised) = raising(&db).await;
        // Clear the events raised above before timing the relays.
        db.execute_unprepared("DELETE FROM event_outbox")
            .await
            .unwrap();
        let mut settings = medsec_platform::Settings::defaults().unwrap().events;
        let name = uuid::Uuid::now_v7().simple().to_string();
        settings.stream = format!("MEDSEC_BENCH_{name}");
        settings.subject_prefix = format!("bench{name}");
        let consumers: Vec<Arc<dyn Consumer>> = vec![Arc::new(Inbox)];
        let in_process = relaying(
            &db,
            settings.clone(),
            Transport::InProcess(consumers.into()),
            count,
        )
        .await;
        let jetstream = events::nats::connect("nats://127.0.0.1:4222", &settings)
            .await
            .unwrap();
        let to_nats = relaying(
            &db,
            settings.clone(),
            Transport::Nats(Box::new(jetstream.clone())),
            count,
        )
        .await;
        let _ = jetstream.delete_stream(&settings.stream).await;
        println!("| {backend:?} | {plain:.2} | {raised:.2} | {in_process:.0} | {to_nats:.0} |");
    }
}
