//! A clinic seeded from the allocation-model generator, optimised, committed,
//! then repaired after an absence and a patient's cancellation — all through
//! the API — with every booking checked against the model and the committed
//! objective against the library's optimum for the same instance.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Days, NaiveDate, TimeZone as _};
use chrono_tz::Europe::London;
use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::scheduling::v1 as pb;
use medsec_scheduler::model::{Instance, Kind, Priority};
use medsec_scheduler::{GenerateOptions, SolveOptions, evaluate};

use crate::helpers::{TestApp, spawn_app};
use crate::optimise::{absence, commit, create_slot, offer_of, ok, rebook, referral_now};

both_backends!(a_generated_clinic_is_allocated_optimally_and_repaired);

fn london(date: NaiveDate, minute: u32) -> prost_types::Timestamp {
    let local = date
        .and_hms_opt(minute / 60, minute % 60, 0)
        .expect("valid time");
    let instant = London
        .from_local_datetime(&local)
        .earliest()
        .expect("a real London time");
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: 0,
    }
}

/// The generated clinic's ids in the database.
struct Seeded {
    clinicians: HashMap<String, String>,
    location: String,
    slots: HashMap<String, String>,
    referrals: HashMap<String, String>,
}

async fn seed(app: &mut TestApp, instance: &Instance) -> Seeded {
    let location = ok(app.client.create_location(pb::CreateLocationRequest {
        location: Some(pb::Location {
            name: "Generated Outpatients".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }))
    .await
    .id;
    let mut specialty_of: BTreeMap<&str, &str> = BTreeMap::new();
    for slot in &instance.slots {
        specialty_of.insert(&slot.clinician, &slot.specialty);
    }
    for referral in &instance.referrals {
        for c in [&referral.required_clinician, &referral.preferred_clinician]
            .into_iter()
            .flatten()
        {
            specialty_of.insert(c, &referral.specialty);
        }
    }
    let mut clinicians = HashMap::new();
    for (name, specialty) in specialty_of {
        let id = app
            .staff(pb::StaffMember {
                name: name.into(),
                role: pb::StaffRole::Clinician as i32,
                grade: "consultant".into(),
                specialties: vec![specialty.into()],
                ..Default::default()
            })
            .await
            .id;
        clinicians.insert(name.to_owned(), id);
    }
    let mut slots = HashMap::new();
    for slot in &instance.slots {
        let (h, m) = slot
            .start
            .as_deref()
            .and_then(|s| s.split_once(':'))
            .map(|(h, m)| (h.parse::<u32>().unwrap(), m.parse::<u32>().unwrap()))
            .unwrap();
        let start = h * 60 + m;
        let created = pb::Slot {
            clinician_id: clinicians[&slot.clinician].clone(),
            specialty: slot.specialty.clone(),
            location_id: location.clone(),
            start_time: Some(london(slot.date, start)),
            end_time: Some(london(slot.date, start + 20)),
            kind: kind(slot.kind) as i32,
            mode: pb::ConsultationMode::FaceToFace as i32,
            capacity: i32::try_from(slot.capacity).unwrap(),
            ..Default::default()
        };
        slots.insert(slot.id.clone(), create_slot(app, created).await.id);
    }
    let mut patients: HashMap<&str, String> = HashMap::new();
    let mut referrals = HashMap::new();
    for referral in &instance.referrals {
        let patient = patients
            .entry(&referral.patient)
            .or_insert_with(crate::helpers::patient)
            .clone();
        let clinician = |c: &Option<String>| {
            c.as_ref()
                .map(|c| clinicians[c].clone())
                .unwrap_or_default()
        };
        let created = ok(app.client.create_referral(pb::CreateReferralRequest {
            referral: Some(pb::Referral {
                patient_id: patient,
                specialty: referral.specialty.clone(),
                priority: match referral.priority {
                    Priority::TwoWeekWait => pb::Priority::TwoWeekWait,
                    Priority::Urgent => pb::Priority::Urgent,
                    Priority::Routine => pb::Priority::Routine,
                } as i32,
                clock_start: referral.clock_start.to_string(),
                kind: kind(referral.kind) as i32,
                earliest: referral.earliest.map(|d| d.to_string()).unwrap_or_default(),
                unavailable: referral
                    .unavailable
                    .iter()
                    .map(|r| pb::DateRange {
                        from: r.from.to_string(),
                        to: r.to.to_string(),
                    })
                    .collect(),
                required_clinician: clinician(&referral.required_clinician),
                preferred_clinician: clinician(&referral.preferred_clinician),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await;
        referrals.insert(referral.id.clone(), created.id);
    }
    Seeded {
        clinicians,
        location,
        slots,
        referrals,
    }
}

/// The position in the model's list of each database id, by the model id
/// it was seeded for.
fn index<'a>(
    seeded: &'a HashMap<String, String>,
    model_ids: impl Iterator<Item = &'a String>,
) -> HashMap<&'a str, usize> {
    model_ids
        .enumerate()
        .map(|(i, id)| (seeded[id].as_str(), i))
        .collect()
}

fn kind(kind: Kind) -> pb::SlotKind {
    match kind {
        Kind::New => pb::SlotKind::New,
        Kind::FollowUp => pb::SlotKind::FollowUp,
    }
}

async fn holding_appointments(app: &mut TestApp) -> Vec<pb::Appointment> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = ok(app.client.list_appointments(pb::ListAppointmentsRequest {
            page_size: 1000,
            page_token: token,
            ..Default::default()
        }))
        .await;
        all.extend(page.appointments.into_iter().filter(|a| {
            matches!(
                a.status(),
                pb::AppointmentStatus::Booked | pb::AppointmentStatus::Arrived
            )
        }));
        if page.next_page_token.is_empty() {
            return all;
        }
        token = page.next_page_token;
    }
}

/// No slot over capacity (and the stored count agrees), no patient twice on
/// one day, no booking in a busy-unavailable slot.
async fn assert_no_double_booking(app: &mut TestApp) {
    let appointments = holding_appointments(app).await;
    let mut per_slot: HashMap<String, i32> = HashMap::new();
    let mut patient_days = HashSet::new();
    for a in &appointments {
        *per_slot.entry(a.slot_id.clone()).or_default() += 1;
        let day = a.start_time.as_ref().unwrap().seconds.div_euclid(86_400);
        assert!(
            patient_days.insert((a.patient_id.clone(), day)),
            "patient {} twice on one day",
            a.patient_id
        );
    }
    for (slot_id, count) in per_slot {
        let slot = app.get_slot(&slot_id).await;
        assert_eq!(slot.booked, count, "slot {slot_id} count");
        assert!(count <= slot.capacity, "slot {slot_id} over capacity");
        assert_ne!(slot.state(), pb::SlotState::BusyUnavailable);
    }
}

async fn a_generated_clinic_is_allocated_optimally_and_repaired(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let instance = medsec_scheduler::generate(GenerateOptions {
        referrals: 120,
        specialties: 2,
        weeks: 4,
        seed: 7,
    });
    let seeded = seed(&mut app, &instance).await;
    let problem = medsec_scheduler::validate(&instance).unwrap();
    let optimum = medsec_scheduler::solve(&problem, &SolveOptions::default()).unwrap();
    assert_eq!(optimum.status, medsec_scheduler::Status::Optimal);

    let (start, end) = (instance.horizon.start, instance.horizon.end);
    let proposal = ok(app.client.propose_allocation(pb::ProposeAllocationRequest {
        specialty: String::new(),
        horizon_start: start.to_string(),
        horizon_end: end.to_string(),
    }))
    .await;
    assert!(proposal.optimal);
    assert_eq!(proposal.referrals as usize, instance.referrals.len());
    assert_eq!(proposal.slots as usize, instance.slots.len());
    assert_eq!(
        proposal.objective, optimum.objective,
        "the library's optimum"
    );
    assert!(proposal.breaches_avoided >= 0);

    let committed = commit(&mut app, &proposal.id).await;
    assert!(
        committed.not_booked.is_empty(),
        "{:?}",
        committed.not_booked
    );
    assert_eq!(committed.booked, proposal.referrals_allocated);

    // The bookings, read back through the API, as the generator's instance.
    let slot_index = index(&seeded.slots, problem.slots.iter().map(|s| &s.id));
    let referral_index = index(&seeded.referrals, problem.referrals.iter().map(|r| &r.id));
    let mut assignment = vec![None; problem.referrals.len()];
    for a in holding_appointments(&mut app).await {
        assignment[referral_index[a.referral_id.as_str()]] = Some(slot_index[a.slot_id.as_str()]);
    }
    let committed_objective =
        evaluate::check(&problem, &assignment).expect("feasible under the model");
    assert_eq!(committed_objective, optimum.objective);
    assert_no_double_booking(&mut app).await;

    // A clinician with bookings goes on leave for a week; a week of extra
    // clinics after the horizon gives the displaced somewhere to go.
    let appointments = holding_appointments(&mut app).await;
    let absent = appointments[appointments.len() / 2].clinician_id.clone();
    let absent_name = seeded
        .clinicians
        .iter()
        .find(|(_, id)| **id == absent)
        .map(|(name, _)| name.clone())
        .unwrap();
    let specialty = instance
        .slots
        .iter()
        .find(|s| s.clinician == absent_name)
        .map(|s| s.specialty.clone())
        .unwrap();
    let leave_from = start.checked_add_days(Days::new(7)).unwrap();
    let leave_to = leave_from.checked_add_days(Days::new(7)).unwrap();
    let extra_day = end.checked_add_days(Days::new(1)).unwrap();
    for day in 0..5 {
        let date = extra_day.checked_add_days(Days::new(day)).unwrap();
        for (kind, first) in [
            (pb::SlotKind::New, 9 * 60),
            (pb::SlotKind::FollowUp, 14 * 60),
        ] {
            for n in 0..3 {
                let extra = pb::Slot {
                    clinician_id: absent.clone(),
                    specialty: specialty.clone(),
                    location_id: seeded.location.clone(),
                    start_time: Some(london(date, first + n * 20)),
                    end_time: Some(london(date, first + n * 20 + 20)),
                    kind: kind as i32,
                    mode: pb::ConsultationMode::Video as i32,
                    capacity: 1,
                    ..Default::default()
                };
                create_slot(&mut app, extra).await;
            }
        }
    }
    let leave = (london(leave_from, 0), london(leave_to, 0));
    let absence = absence(&mut app, &absent, leave, pb::AbsenceReason::Leave).await;
    let displaced = absence.displaced_appointments.len();
    assert!(displaced > 0, "the leave displaces someone");
    let request = pb::RebookDisplacedRequest {
        absence_id: absence.id.clone(),
        horizon_start: start.to_string(),
        horizon_end: extra_day
            .checked_add_days(Days::new(6))
            .unwrap()
            .to_string(),
        ..Default::default()
    };
    let rebooked = rebook(&mut app, request).await.unwrap();
    assert!(rebooked.optimal);
    assert_eq!(rebooked.moves.len() + rebooked.not_moved.len(), displaced);
    assert!(!rebooked.moves.is_empty());
    for m in &rebooked.moves {
        let original = &instance.referrals[referral_index[m.referral_id.as_str()]];
        let referral = referral_now(&mut app, &m.referral_id).await;
        assert_eq!(referral.clock_start, original.clock_start.to_string());
        assert_eq!(referral.status(), pb::ReferralStatus::Booked);
    }
    assert_no_double_booking(&mut app).await;

    // A patient cancels; the freed slot is offered to the best waiting
    // referral, who books it.
    let cancelled = holding_appointments(&mut app)
        .await
        .into_iter()
        .find(|a| a.clinician_id != absent)
        .unwrap();
    app.cancel(&cancelled.id, pb::CancelledBy::Patient, "feeling better")
        .await
        .unwrap();
    let offer = ok(app
        .client
        .offer_freed_slot(offer_of(&cancelled.slot_id, 48)))
    .await;
    let referral = offer.referral.unwrap();
    assert_eq!(referral.status(), pb::ReferralStatus::Waiting);
    assert_eq!(offer.slot.unwrap().state(), pb::SlotState::BusyTentative);
    app.book(&cancelled.slot_id, &referral.patient_id, &referral.id)
        .await
        .unwrap();
    assert_no_double_booking(&mut app).await;
}
