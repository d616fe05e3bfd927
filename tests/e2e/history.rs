//! A randomised history check: seeded clients issue a mix of operations —
//! book, cancel, reschedule, did-not-attend, offer a freed slot, propose and
//! commit the waiting list — concurrently against one server; then a checker
//! replays what was acknowledged and asserts the invariants: every
//! acknowledged booking is there once, in the state and slot its last
//! acknowledged change left it; no slot holds more than its capacity and its
//! count agrees with its appointments; nobody is in two places at once; no
//! referral has two live appointments; a retried booking answers with the
//! first. `make test` runs a small history on both databases;
//! `MEDSEC_HISTORY_OPS=10000` (as `make bench` sets) runs a large one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use medsec_platform::both_backends;
use medsec_platform::testing::{AuthChannel, Backend, TestDatabase};
use medsec_platform::time::{format_civil_date, today_in_london};
use medsec_proto::scheduling::v1 as pb;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;

use crate::dice::Dice;
use crate::fixtures::{clinic, referral, registered};
use crate::harness::start;

both_backends!(a_random_concurrent_history_keeps_every_invariant);

/// Clients issuing operations at once.
const CLIENTS: u64 = 6;
/// Operations in all, unless `MEDSEC_HISTORY_OPS` says otherwise.
const DEFAULT_OPS: u64 = 600;

/// What a client was told of one of its appointments, in order.
#[derive(Debug, Clone)]
struct Known {
    slot: String,
    status: pb::AppointmentStatus,
    /// The booking that made it, to replay.
    booking: pb::BookAppointmentRequest,
}

/// One client's acknowledged history.
#[derive(Debug, Default)]
struct Acknowledged {
    appointments: HashMap<String, Known>,
    refusals: usize,
    operations: u64,
    committed: i32,
}

async fn client_history(
    mut client: SchedulingServiceClient<AuthChannel>,
    seed: u64,
    operations: u64,
    slots: Arc<Vec<String>>,
    patients: Arc<Vec<String>>,
) -> Acknowledged {
    let mut dice = Dice::new(seed);
    let mut seen = Acknowledged::default();
    for n in 0..operations {
        seen.operations += 1;
        let mine: Vec<String> = seen
            .appointments
            .iter()
            .filter(|(_, known)| known.status == pb::AppointmentStatus::Booked)
            .map(|(id, _)| id.clone())
            .collect();
        let roll = dice.below(100);
        let answer = if roll < 45 || mine.is_empty() {
            let request = pb::BookAppointmentRequest {
                slot_id: slots[dice.below(slots.len())].clone(),
                patient_id: patients[dice.below(patients.len())].clone(),
                reason: "history".into(),
                request_id: format!("history-{seed}-{n}"),
                ..Default::default()
            };
            client
                .book_appointment(request.clone())
                .await
                .map(|booked| {
                    let booked = booked.into_inner();
                    seen.appointments.insert(
                        booked.id,
                        Known {
                            slot: request.slot_id.clone(),
                            status: pb::AppointmentStatus::Booked,
                            booking: request,
                        },
                    );
                })
        } else if roll < 60 {
            let id = mine[dice.below(mine.len())].clone();
            client
                .cancel_appointment(pb::CancelAppointmentRequest {
                    id: id.clone(),
                    cancelled_by: pb::CancelledBy::Patient as i32,
                    reason: "cannot come".into(),
                })
                .await
                .map(|_| {
                    if let Some(known) = seen.appointments.get_mut(&id) {
                        known.status = pb::AppointmentStatus::Cancelled;
                    }
                })
        } else if roll < 80 {
            let id = mine[dice.below(mine.len())].clone();
            let current = seen.appointments.get(&id).map(|known| known.slot.clone());
            let mut new_slot = slots[dice.below(slots.len())].clone();
            if Some(&new_slot) == current.as_ref() {
                new_slot = slots[(dice.below(slots.len() - 1)
                    + 1
                    + slots.iter().position(|s| *s == new_slot).unwrap_or(0))
                    % slots.len()]
                .clone();
            }
            client
                .reschedule_appointment(pb::RescheduleAppointmentRequest {
                    id: id.clone(),
                    new_slot_id: new_slot.clone(),
                })
                .await
                .map(|moved| {
                    // The appointment itself moves.
                    assert_eq!(moved.get_ref().id, id);
                    if let Some(known) = seen.appointments.get_mut(&id) {
                        known.slot = new_slot;
                    }
                })
        } else if roll < 85 {
            let id = mine[dice.below(mine.len())].clone();
            client
                .mark_did_not_attend(pb::MarkDidNotAttendRequest { id: id.clone() })
                .await
                .map(|_| {
                    if let Some(known) = seen.appointments.get_mut(&id) {
                        known.status = pb::AppointmentStatus::Noshow;
                    }
                })
        } else if roll < 95 {
            let hold_until = chrono::Utc::now() + chrono::Duration::minutes(30);
            client
                .offer_freed_slot(pb::OfferFreedSlotRequest {
                    slot_id: slots[dice.below(slots.len())].clone(),
                    hold_until: Some(prost_types::Timestamp {
                        seconds: hold_until.timestamp(),
                        nanos: 0,
                    }),
                })
                .await
                .map(|_| ())
        } else {
            let proposal = client
                .propose_allocation(pb::ProposeAllocationRequest {
                    specialty: "cardiology".into(),
                    horizon_start: format_civil_date(today_in_london()),
                    horizon_end: format_civil_date(today_in_london() + chrono::Duration::days(20)),
                })
                .await;
            match proposal {
                Ok(proposal) => client
                    .commit_proposal(pb::CommitProposalRequest {
                        id: proposal.into_inner().id,
                    })
                    .await
                    .map(|committed| seen.committed += committed.into_inner().booked),
                Err(status) => Err(status),
            }
        };
        if let Err(status) = answer {
            assert!(
                matches!(
                    status.code(),
                    Code::FailedPrecondition
                        | Code::AlreadyExists
                        | Code::Aborted
                        | Code::Unavailable
                        | Code::NotFound
                ),
                "an operation answered {status:?}"
            );
            seen.refusals += 1;
        }
    }
    seen
}

async fn a_random_concurrent_history_keeps_every_invariant(backend: Backend) {
    let operations: u64 = std::env::var("MEDSEC_HISTORY_OPS")
        .ok()
        .and_then(|ops| ops.parse().ok())
        .unwrap_or(DEFAULT_OPS);
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    let mut scheduling = SchedulingServiceClient::new(suite.channel.clone());
    let clinic = clinic(&mut scheduling, 2).await;
    let patients = registered(&suite.channel, 1, 40).await;
    // Referrals wait for the optimiser and for offers of freed slots.
    for (n, patient) in patients.iter().enumerate().take(30) {
        let waiting = chrono::Duration::days(20 + 3 * n as i64);
        scheduling
            .create_referral(referral(patient, waiting))
            .await
            .unwrap();
    }
    let slots = Arc::new(
        clinic
            .slots
            .iter()
            .map(|slot| slot.id.clone())
            .collect::<Vec<_>>(),
    );
    let patients = Arc::new(patients);
    let mut clients = tokio::task::JoinSet::new();
    for seed in 1..=CLIENTS {
        clients.spawn(client_history(
            scheduling.clone(),
            seed,
            operations / CLIENTS,
            slots.clone(),
            patients.clone(),
        ));
    }
    let mut histories = Vec::new();
    while let Some(history) = clients.join_next().await {
        histories.push(history.unwrap());
    }
    let acknowledged: usize = histories.iter().map(|h| h.appointments.len()).sum();
    let refused: usize = histories.iter().map(|h| h.refusals).sum();
    assert!(acknowledged > 0, "some bookings were acknowledged");
    eprintln!(
        "history: {} operations, {acknowledged} appointments acknowledged, {refused} refused, \
         {} booked by commits",
        histories.iter().map(|h| h.operations).sum::<u64>(),
        histories.iter().map(|h| h.committed).sum::<i32>()
    );

    // Replay what each client was told against what is stored.
    for history in &histories {
        for (id, known) in &history.appointments {
            let stored = scheduling
                .get_appointment(pb::GetAppointmentRequest { id: id.clone() })
                .await
                .unwrap_or_else(|status| panic!("acknowledged appointment {id}: {status:?}"))
                .into_inner();
            assert_eq!(stored.status(), known.status, "appointment {id}");
            assert_eq!(stored.slot_id, known.slot, "appointment {id}");
        }
    }
    // A retried booking answers with the appointment the first call made,
    // whatever has happened to it since, and books nothing.
    for (id, known) in histories
        .iter()
        .flat_map(|h| h.appointments.iter())
        .take(20)
    {
        let replayed = scheduling
            .book_appointment(known.booking.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(&replayed.id, id, "a replay of {}", known.booking.request_id);
    }
    let db = database.connect().await;
    let live = "('booked', 'arrived', 'fulfilled')";
    assert_eq!(
        count(
            &db,
            format!(
                "SELECT s.id FROM slots s LEFT JOIN appointments a ON a.slot_id = s.id \
                 AND a.status IN {live} GROUP BY s.id, s.capacity, s.booked \
                 HAVING COUNT(a.id) > s.capacity OR COUNT(a.id) <> s.booked"
            )
        )
        .await,
        0,
        "no slot over capacity or miscounted"
    );
    assert_eq!(
        count(
            &db,
            "SELECT a.id FROM appointments a JOIN appointments b \
             ON a.patient_id = b.patient_id AND a.id < b.id \
             AND a.start_at < b.end_at AND b.start_at < a.end_at \
             WHERE a.status = 'booked' AND b.status = 'booked'"
        )
        .await,
        0,
        "nobody in two places at once"
    );
    assert_eq!(
        count(
            &db,
            "SELECT referral_id FROM appointments WHERE referral_id IS NOT NULL \
             AND status = 'booked' GROUP BY referral_id HAVING COUNT(*) > 1"
        )
        .await,
        0,
        "no referral with two live appointments"
    );
    let stored: HashSet<String> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM appointments",
        ))
        .await
        .unwrap()
        .iter()
        .filter_map(|row| {
            row.try_get::<String>("", "id").ok().or_else(|| {
                row.try_get::<uuid::Uuid>("", "id")
                    .ok()
                    .map(|id| id.to_string())
            })
        })
        .collect();
    for history in &histories {
        for id in history.appointments.keys() {
            assert!(
                stored.contains(id),
                "acknowledged appointment {id} is stored"
            );
        }
    }
    suite.stop().await;
}

/// How many rows `sql` answers.
async fn count(db: &sea_orm::DatabaseConnection, sql: impl Into<String>) -> usize {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.into(),
    ))
    .await
    .unwrap()
    .len()
}
