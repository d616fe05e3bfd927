//! ProposeAllocation over a generated waiting list stored in PostgreSQL,
//! timed end to end through a real gRPC client (build the instance from the
//! tables, solve, store every allocation, answer).
//!
//! `cargo bench -p medsec-scheduling --bench propose` (PostgreSQL at
//! `MEDSEC_TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/postgres).
//! Size: `MEDSEC_BENCH_SIZE=referrals:specialties:weeks` (default
//! 10000:10:12), runs: `MEDSEC_BENCH_RUNS` (default 3). Prints a Markdown
//! table row per run for docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmarks may panic

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{NaiveDate, TimeZone as _, Utc};
use chrono_tz::Europe::London;
use medsec_platform::server::Services;
use medsec_platform::testing::{Backend, Running, start};
use medsec_proto::scheduling::v1 as pb;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use medsec_scheduler::GenerateOptions;
use medsec_scheduler::model::Kind;
use medsec_scheduling::store::entities::{location, referral, slot, staff};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait as _, IntoActiveModel as _};
use uuid::Uuid;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn epoch(date: NaiveDate, minute: u32) -> i64 {
    let local = date.and_hms_opt(minute / 60, minute % 60, 0).unwrap();
    London
        .from_local_datetime(&local)
        .earliest()
        .unwrap()
        .timestamp()
}

fn kind(kind: Kind) -> &'static str {
    match kind {
        Kind::New => "new",
        Kind::FollowUp => "follow_up",
    }
}

/// Inserts `rows` a few thousand to a statement, well under PostgreSQL's
/// 65535 bound parameters.
async fn insert_all<A: ActiveModelTrait + Send>(db: &DatabaseConnection, rows: Vec<A>) {
    for chunk in rows.chunks(2000) {
        A::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

/// Bulk-inserts the generated clinic.
async fn seed(db: &DatabaseConnection, instance: &medsec_scheduler::Instance) {
    let now = Utc::now();
    let place = location::Model {
        id: Uuid::now_v7(),
        name: "Bench Outpatients".into(),
        address: String::new(),
        create_time: now,
    };
    insert_all(db, vec![place.clone().into_active_model()]).await;
    let mut specialty_of: BTreeMap<&str, &str> = BTreeMap::new();
    for s in &instance.slots {
        specialty_of.insert(&s.clinician, &s.specialty);
    }
    for r in &instance.referrals {
        for c in [&r.required_clinician, &r.preferred_clinician]
            .into_iter()
            .flatten()
        {
            specialty_of.insert(c, &r.specialty);
        }
    }
    let clinicians: HashMap<&str, Uuid> = specialty_of
        .keys()
        .map(|name| (*name, Uuid::now_v7()))
        .collect();
    let staff_rows: Vec<_> = specialty_of
        .iter()
        .map(|(name, specialty)| {
            staff::Model {
                id: clinicians[name],
                name: (*name).to_owned(),
                role: "clinician".into(),
                grade: Some("consultant".into()),
                specialties: format!(",{specialty},"),
                skills: ",".into(),
                duty_manager: false,
                create_time: now,
                revision: 0,
            }
            .into_active_model()
        })
        .collect();
    insert_all(db, staff_rows).await;
    let slot_rows: Vec<_> = instance
        .slots
        .iter()
        .map(|s| {
            let (h, m) = s.start.as_deref().unwrap().split_once(':').unwrap();
            let minute = h.parse::<u32>().unwrap() * 60 + m.parse::<u32>().unwrap();
            slot::Model {
                id: Uuid::now_v7(),
                clinician_id: clinicians[s.clinician.as_str()],
                specialty: s.specialty.clone(),
                location_id: place.id,
                room_id: None,
                template_id: None,
                date: s.date,
                start_at: epoch(s.date, minute),
                end_at: epoch(s.date, minute + 20),
                kind: kind(s.kind).into(),
                mode: "face_to_face".into(),
                capacity: i32::try_from(s.capacity).unwrap(),
                booked: 0,
                unavailable: false,
                create_time: now,
                held_for_referral: None,
                held_until: None,
            }
            .into_active_model()
        })
        .collect();
    insert_all(db, slot_rows).await;
    let mut patients: HashMap<&str, Uuid> = HashMap::new();
    let referral_rows: Vec<_> = instance
        .referrals
        .iter()
        .map(|r| {
            let patient = *patients.entry(&r.patient).or_insert_with(Uuid::now_v7);
            let unavailable: Vec<_> = r
                .unavailable
                .iter()
                .map(|d| serde_json::json!({"from": d.from.to_string(), "to": d.to.to_string()}))
                .collect();
            referral::Model {
                id: Uuid::now_v7(),
                patient_id: patient,
                specialty: r.specialty.clone(),
                priority: r.priority.to_string(),
                clock_start: r.clock_start,
                kind: kind(r.kind).into(),
                earliest: r.earliest,
                unavailable: serde_json::Value::Array(unavailable).to_string(),
                required_clinician: r.required_clinician.as_deref().map(|c| clinicians[c]),
                preferred_clinician: r.preferred_clinician.as_deref().map(|c| clinicians[c]),
                status: "waiting".into(),
                removal_reason: None,
                create_time: now,
                update_time: now,
                revision: 1,
                funding_kind: "nhs".into(),
                insurer_name: None,
                policy_number: None,
                preauthorisation_code: None,
            }
            .into_active_model()
        })
        .collect();
    insert_all(db, referral_rows).await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this runs
    // once on a small clinic, so the bench stays compiled and working without
    // costing the test suite a 10k-referral run.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let (default_size, default_runs) = if benchmarking {
        ("10000:10:12", "3")
    } else {
        ("300:2:4", "1")
    };
    let size = env_or("MEDSEC_BENCH_SIZE", default_size);
    let runs: usize = env_or("MEDSEC_BENCH_RUNS", default_runs).parse().unwrap();
    let parts: Vec<usize> = size.split(':').map(|p| p.parse().unwrap()).collect();
    let options = GenerateOptions {
        referrals: parts[0],
        specialties: parts[1],
        weeks: u32::try_from(parts[2]).unwrap(),
        seed: 1,
    };
    let instance = medsec_scheduler::generate(options);

    let running = start(
        Backend::Postgres,
        medsec_scheduling::migrate,
        |db, settings| {
            Services::new().with(
                medsec_scheduling::service(db, settings),
                &medsec_scheduling::POLICY,
            )
        },
    )
    .await;
    let seeding = Instant::now();
    seed(&running.db, &instance).await;
    eprintln!(
        "seeded {} referrals and {} slots in {:.2} s",
        instance.referrals.len(),
        instance.slots.len(),
        seeding.elapsed().as_secs_f64()
    );
    let mut client = SchedulingServiceClient::new(running.authorised_channel());

    println!(
        "| size (referrals/specialties/weeks) | run | end to end (s) | read + build + solve (s) | solver (s) | referrals | slots | allocated | optimal | objective | greedy objective | breaches avoided | mean wait (days) | max wait (days) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for run in 1..=runs {
        let started = Instant::now();
        let proposal = client
            .propose_allocation(pb::ProposeAllocationRequest {
                specialty: String::new(),
                horizon_start: instance.horizon.start.to_string(),
                horizon_end: instance.horizon.end.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        let wall = started.elapsed().as_secs_f64();
        println!(
            "| {}/{}/{} | {run} | {wall:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} |",
            options.referrals,
            options.specialties,
            options.weeks,
            proposal.run_seconds,
            proposal.solve_seconds,
            proposal.referrals,
            proposal.slots,
            proposal.referrals_allocated,
            proposal.optimal,
            proposal.objective,
            proposal.greedy_objective,
            proposal.breaches_avoided,
            proposal.mean_wait_days,
            proposal.max_wait_days,
        );
    }
    let Running {
        db,
        server,
        database,
        ..
    } = running;
    server.stop().await;
    drop(db);
    drop(database);
}
