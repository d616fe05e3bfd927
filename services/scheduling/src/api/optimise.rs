//! The optimising scheduler through the API: proposals, their commit, the
//! best slot for one referral, rebooking displaced referrals and offering a
//! freed slot. Every decision is the allocation model's (scheduler/).

use std::time::Instant;

use chrono::{NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::{format_civil_date, to_timestamp, today_in_london};
use medsec_proto::scheduling::v1 as pb;

use super::SchedulingApi;
use prost::Message as _;
use sea_orm::DatabaseConnection;
use tonic::Request;
use uuid::Uuid;

use super::appointments::appointment_to_proto;
use super::convert::{Reader, present, request_key};
use super::diary::slot_to_proto;
use super::referrals::referral_to_proto;
use super::staff::epoch_to_proto;
use crate::domain::{AppointmentStatus, CancelledBy, ReferralStatus, text};
use crate::store::appointments::{self, Booking};
use crate::store::entities::{appointment, proposal, proposal_allocation};
use crate::store::optimise::{self, PlannedMove, RunLock, Scope, row_id, terms};
use crate::store::{diary, referrals};

/// Longest horizon a run may cover.
const MAX_HORIZON_DAYS: i64 = 366;

/// Reads a required horizon, adding violations for bad or reversed dates.
fn horizon(
    r: &mut Reader,
    start_field: &str,
    start: &str,
    end_field: &str,
    end: &str,
) -> Option<(NaiveDate, NaiveDate)> {
    let start = r.date(start_field, start);
    let end = r.date(end_field, end);
    let (start, end) = (start?, end?);
    if end < start {
        r.add(end_field, format!("must not be before {start_field}"));
        return None;
    }
    if (end - start).num_days() > MAX_HORIZON_DAYS {
        r.add(end_field, "must be at most 366 days after the start");
        return None;
    }
    Some((start, end))
}

fn proposal_to_proto(row: &proposal::Model) -> pb::Proposal {
    let status = match row.status.as_str() {
        optimise::PROPOSED => pb::ProposalStatus::Proposed,
        optimise::COMMITTED => pb::ProposalStatus::Committed,
        _ => pb::ProposalStatus::Unspecified,
    };
    pb::Proposal {
        id: row.id.to_string(),
        specialty: row.specialty.clone(),
        horizon_start: format_civil_date(row.horizon_start),
        horizon_end: format_civil_date(row.horizon_end),
        status: status as i32,
        optimal: row.optimal,
        objective: row.objective,
        greedy_objective: row.greedy_objective,
        referrals: row.referrals,
        slots: row.slots,
        referrals_allocated: row.allocated,
        referrals_unallocated: row.unallocated,
        breaches: row.breaches,
        greedy_breaches: row.greedy_breaches,
        breaches_avoided: row.greedy_breaches - row.breaches,
        mean_wait_days: row.mean_wait_days,
        max_wait_days: row.max_wait_days,
        solve_seconds: row.solve_seconds,
        run_seconds: row.run_seconds,
        create_time: Some(to_timestamp(row.create_time)),
        commit_time: row.commit_time.map(to_timestamp),
        booked: row.booked,
        not_booked: row.not_booked,
    }
}

fn allocation_to_proto(row: &proposal_allocation::Model) -> pb::ProposedAllocation {
    pb::ProposedAllocation {
        referral_id: row.referral_id.to_string(),
        patient_id: row.patient_id.to_string(),
        slot_id: row.slot_id.to_string(),
        specialty: row.specialty.clone(),
        slot_date: format_civil_date(row.slot_date),
        clinician_id: row.clinician_id.to_string(),
        wait_days: row.wait_days,
        breach: row.breach,
        preference_missed: row.preference_missed,
        cost: row.cost,
        appointment_id: row
            .appointment_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        not_booked_reason: row.not_booked_reason.clone().unwrap_or_default(),
    }
}

pub(super) async fn propose(
    api: &SchedulingApi,
    request: Request<pb::ProposeAllocationRequest>,
) -> Result<pb::Proposal, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let started = Instant::now();
    let mut r = Reader::new();
    let specialty = if request.specialty.is_empty() {
        None
    } else {
        r.check("specialty", text::specialty(&request.specialty))
    };
    let window = horizon(
        &mut r,
        "horizon_start",
        &request.horizon_start,
        "horizon_end",
        &request.horizon_end,
    );
    r.finish()?;
    let (start, end) = present(window, "horizon_start")?;
    let specialties = match &specialty {
        Some(one) => vec![one.clone()],
        None => optimise::specialties(db, start, end).await?,
    };
    let lock = RunLock::acquire(db, &specialties).await?;
    let scope = Scope {
        specialties: Some(specialties),
        start,
        end,
        ..Scope::default()
    };
    let run = async {
        let built = optimise::build_instance(db, &scope).await?;
        let solved = optimise::solve(built.instance).await?;
        let seconds = started.elapsed().as_secs_f64();
        optimise::store_proposal(db, specialty.as_deref(), &scope, &solved, seconds).await
    }
    .await;
    // Released whatever happened, so a failed run does not block the next.
    lock.release().await?;
    let stored = run?;
    tracing::info!(
        proposal_id = %stored.id,
        referrals = stored.referrals,
        allocated = stored.allocated,
        optimal = stored.optimal,
        run_seconds = stored.run_seconds,
        "allocation proposed"
    );
    Ok(proposal_to_proto(&stored))
}

fn one_id(field: &str, text: &str) -> Result<Uuid, ApiError> {
    let mut r = Reader::new();
    let id = r.id(field, text);
    r.finish()?;
    present(id, field)
}

pub(super) async fn get_proposal(
    api: &SchedulingApi,
    request: Request<pb::GetProposalRequest>,
) -> Result<pb::Proposal, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let id = one_id("id", &request.id)?;
    Ok(proposal_to_proto(&optimise::get_proposal(db, id).await?))
}

pub(super) async fn list_proposals(
    api: &SchedulingApi,
    request: Request<pb::ListProposalsRequest>,
) -> Result<pb::ListProposalsResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let specialty = if request.specialty.is_empty() {
        None
    } else {
        r.check("specialty", text::specialty(&request.specialty))
    };
    r.finish()?;
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("{specialty:?}"),
    )?;
    let mut rows = optimise::list_proposals(db, specialty.as_deref(), &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListProposalsResponse {
        proposals: rows.iter().map(proposal_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn list_allocations(
    api: &SchedulingApi,
    request: Request<pb::ListProposalAllocationsRequest>,
) -> Result<pb::ListProposalAllocationsResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let id = one_id("proposal_id", &request.proposal_id)?;
    let page = PageRequest::parse(request.page_size, &request.page_token, &id.to_string())?;
    let mut rows = optimise::list_allocations(db, id, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.referral_id.to_string());
    Ok(pb::ListProposalAllocationsResponse {
        allocations: rows.iter().map(allocation_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn commit(
    api: &SchedulingApi,
    request: Request<pb::CommitProposalRequest>,
) -> Result<pb::CommitProposalResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let id = one_id("id", &request.id)?;
    let committed = optimise::commit(db, id).await?;
    Ok(pb::CommitProposalResponse {
        proposal: Some(proposal_to_proto(&committed.proposal)),
        booked: committed.booked,
        not_booked: committed
            .not_booked
            .iter()
            .map(allocation_to_proto)
            .collect(),
    })
}

/// Candidates returned by BookBestSlot unless asked otherwise, and at most.
const DEFAULT_CANDIDATES: usize = 10;
const MAX_CANDIDATES: usize = 100;

pub(super) async fn book_best_slot(
    api: &SchedulingApi,
    request: Request<pb::BookBestSlotRequest>,
) -> Result<pb::BookBestSlotResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let referral_id = r.id("referral_id", &request.referral_id);
    let window = horizon(
        &mut r,
        "from_date",
        &request.from_date,
        "to_date",
        &request.to_date,
    );
    if request.max_candidates < 0 {
        r.add("max_candidates", "must not be negative");
    }
    r.request_id(&request.request_id);
    r.finish()?;
    let referral_id = present(referral_id, "referral_id")?;
    let (start, end) = present(window, "from_date")?;
    let wanted = match usize::try_from(request.max_candidates) {
        Ok(0) | Err(_) => DEFAULT_CANDIDATES,
        Ok(n) => n.min(MAX_CANDIDATES),
    };
    let key = request_key(
        &request.request_id,
        pb::BookBestSlotRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let referral = referrals::get(db, referral_id).await?;
    if request.book
        && let Some(earlier) = optimise::replayed(db, key.as_ref()).await?
    {
        return Ok(pb::BookBestSlotResponse {
            candidates: Vec::new(),
            appointment: Some(appointment_to_proto(&earlier)),
        });
    }
    if referral.status != ReferralStatus::Waiting.as_str() {
        return Err(ApiError::wrong_state(
            format!("referrals/{referral_id}"),
            &referral.status,
            "book a slot for it",
        ));
    }
    let scope = Scope {
        specialties: Some(vec![referral.specialty.clone()]),
        start,
        end,
        referrals: Some(vec![referral_id]),
        ..Scope::default()
    };
    let built = optimise::build_instance(db, &scope).await?;
    let problem = medsec_scheduler::validate(&built.instance).map_err(ApiError::internal)?;
    // Every feasible slot with the model's cost of taking it; cheapest
    // first, then earlier, then by id, so the order is stable.
    let mut ranked = Vec::new();
    for s in 0..problem.slots.len() {
        if !problem.feasible(0, s) {
            continue;
        }
        let slot_id = row_id(&problem.slots[s].id)?;
        let Some(slot) = built.slots.get(&slot_id) else {
            continue;
        };
        ranked.push((terms(&problem, 0, s), slot));
    }
    ranked.sort_by_key(|(t, slot)| (t.cost, slot.start_at, slot.id));
    ranked.truncate(wanted);
    let candidates: Vec<pb::SlotCandidate> = ranked
        .iter()
        .map(|(t, slot)| pb::SlotCandidate {
            slot: Some(slot_to_proto(slot)),
            wait_days: t.wait_days,
            breach: t.breach,
            preference_missed: t.preference_missed,
            cost: t.cost,
        })
        .collect();
    let mut appointment = None;
    if request.book {
        let bookings = ranked
            .iter()
            .map(|(_, slot)| Booking {
                slot_id: slot.id,
                patient_id: referral.patient_id,
                referral_id: Some(referral_id),
                reason: "best slot by the allocation model".to_owned(),
            })
            .collect();
        match optimise::book_first(db, key.as_ref(), bookings).await? {
            Ok(booked) => appointment = Some(appointment_to_proto(&booked)),
            Err(reasons) => {
                return Err(ApiError::FailedPrecondition {
                    message: format!(
                        "referrals/{referral_id} has no bookable slot between {start} and {end}: cannot book{}",
                        if reasons.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", reasons.join("; "))
                        }
                    ),
                    kind: medsec_platform::PreconditionKind::State,
                    subject: format!("referrals/{referral_id}"),
                });
            }
        }
    }
    Ok(pb::BookBestSlotResponse {
        candidates,
        appointment,
    })
}

pub(super) async fn rebook_displaced(
    api: &SchedulingApi,
    request: Request<pb::RebookDisplacedRequest>,
) -> Result<pb::RebookDisplacedResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let absence_id = r.optional_id("absence_id", &request.absence_id);
    let mut appointment_ids = Vec::new();
    for (i, text) in request.appointment_ids.iter().enumerate() {
        if let Some(id) = r.id(&format!("appointment_ids[{i}]"), text) {
            appointment_ids.push(id);
        }
    }
    if request.absence_id.is_empty() && request.appointment_ids.is_empty() {
        r.add("absence_id", "is required unless appointment_ids are given");
    }
    if !request.absence_id.is_empty() && !request.appointment_ids.is_empty() {
        r.add("appointment_ids", "must be empty when absence_id is given");
    }
    let window = horizon(
        &mut r,
        "horizon_start",
        &request.horizon_start,
        "horizon_end",
        &request.horizon_end,
    );
    r.finish()?;
    let (start, end) = present(window, "horizon_start")?;

    // A first read finds the specialties to lock; the set is read again
    // under the lock, so a run that finished meanwhile (and moved some of
    // them) is seen, and nothing is moved twice.
    let (not_moved, movable) = displaced(db, absence_id, &appointment_ids, true).await?;
    if movable.is_empty() {
        return Ok(pb::RebookDisplacedResponse {
            moves: Vec::new(),
            not_moved,
            optimal: true,
            objective: 0,
        });
    }
    let mut specialties: Vec<String> = Vec::new();
    for row in &movable {
        if let Some(id) = row.referral_id {
            let referral = referrals::get(db, id).await?;
            if !specialties.contains(&referral.specialty) {
                specialties.push(referral.specialty);
            }
        }
    }
    let lock = RunLock::acquire(db, &specialties).await?;
    let run = rebook_locked(db, absence_id, &appointment_ids, &specialties, start, end).await;
    lock.release().await?;
    run
}

/// The displaced appointments to rebook, and those that will not be (no
/// referral, already dealt with). `strict`: an appointment named that is
/// not displaced is an error; on the second read (under the lock) it is
/// one dealt with meanwhile.
async fn displaced(
    db: &DatabaseConnection,
    absence_id: Option<Uuid>,
    appointment_ids: &[Uuid],
    strict: bool,
) -> Result<(Vec<pb::NotMoved>, Vec<appointment::Model>), ApiError> {
    let mut not_moved = Vec::new();
    let displaced = match absence_id {
        Some(id) => optimise::displaced_by_absence(db, id).await?,
        None => {
            let mut rows = Vec::new();
            for &id in appointment_ids {
                let row = appointments::get(db, id).await?;
                let slot = diary::get_slot(db, row.slot_id).await?;
                let by_hospital = row.status == AppointmentStatus::Cancelled.as_str()
                    && row.cancelled_by.as_deref() == Some(CancelledBy::Hospital.as_str());
                let stranded = row.status == AppointmentStatus::Booked.as_str() && slot.unavailable;
                if !by_hospital && !stranded {
                    if strict {
                        return Err(ApiError::wrong_state(
                            format!("appointments/{id}"),
                            &row.status,
                            "rebook it (only one cancelled by the hospital, or booked in a busy-unavailable slot, is displaced)",
                        ));
                    }
                    not_moved.push(pb::NotMoved {
                        appointment_id: id.to_string(),
                        reason: format!(
                            "is {} in slot {} and no longer displaced: already dealt with",
                            row.status, row.slot_id
                        ),
                    });
                    continue;
                }
                rows.push(row);
            }
            rows
        }
    };

    let mut movable = Vec::new();
    for row in displaced {
        let Some(referral_id) = row.referral_id else {
            not_moved.push(pb::NotMoved {
                appointment_id: row.id.to_string(),
                reason: "has no referral to re-allocate: rebook it by hand".to_owned(),
            });
            continue;
        };
        let referral = referrals::get(db, referral_id).await?;
        let expected = if row.status == AppointmentStatus::Booked.as_str() {
            ReferralStatus::Booked
        } else {
            ReferralStatus::Waiting
        };
        if referral.status != expected.as_str() {
            not_moved.push(pb::NotMoved {
                appointment_id: row.id.to_string(),
                reason: format!(
                    "referral {referral_id} is {}: already dealt with",
                    referral.status
                ),
            });
            continue;
        }
        movable.push(row);
    }
    Ok((not_moved, movable))
}

/// RebookDisplaced under the run lock of `locked` specialties.
async fn rebook_locked(
    db: &DatabaseConnection,
    absence_id: Option<Uuid>,
    appointment_ids: &[Uuid],
    locked: &[String],
    start: NaiveDate,
    end: NaiveDate,
) -> Result<pb::RebookDisplacedResponse, ApiError> {
    let (mut not_moved, read) = displaced(db, absence_id, appointment_ids, false).await?;
    let mut movable = Vec::new();
    let mut referral_ids = Vec::new();
    for row in read {
        let Some(id) = row.referral_id else { continue };
        let referral = referrals::get(db, id).await?;
        if !locked.contains(&referral.specialty) {
            not_moved.push(pb::NotMoved {
                appointment_id: row.id.to_string(),
                reason: "was displaced while this run started: run it again".to_owned(),
            });
            continue;
        }
        referral_ids.push(id);
        movable.push(row);
    }
    if movable.is_empty() {
        return Ok(pb::RebookDisplacedResponse {
            moves: Vec::new(),
            not_moved,
            optimal: true,
            objective: 0,
        });
    }
    let scope = Scope {
        specialties: Some(locked.to_vec()),
        start,
        end,
        referrals: Some(referral_ids),
        exclude_referrals: Vec::new(),
        only_slot: None,
        exclude_slots: movable.iter().map(|a| a.slot_id).collect(),
        exclude_appointments: movable.iter().map(|a| a.id).collect(),
    };
    let run = async {
        let built = optimise::build_instance(db, &scope).await?;
        let solved = optimise::solve(built.instance).await?;
        let mut planned = Vec::new();
        let mut placed = Vec::new();
        for row in &movable {
            let Some(referral_id) = row.referral_id else {
                continue;
            };
            let r = solved
                .problem
                .referrals
                .iter()
                .position(|p| p.id == referral_id.to_string());
            match r.and_then(|r| solved.assignment[r].map(|s| (r, s))) {
                Some((r, s)) => {
                    planned.push(PlannedMove {
                        from: row.clone(),
                        slot_id: row_id(&solved.problem.slots[s].id)?,
                    });
                    placed.push(terms(&solved.problem, r, s));
                }
                None => not_moved.push(pb::NotMoved {
                    appointment_id: row.id.to_string(),
                    reason: "no feasible free slot in the horizon".to_owned(),
                }),
            }
        }
        let results = optimise::apply_moves(db, &planned).await?;
        Ok::<_, ApiError>((solved, planned, placed, results))
    }
    .await;
    let (solved, planned, placed, results) = run?;
    let mut moves = Vec::new();
    for ((planned, t), result) in planned.iter().zip(placed).zip(results) {
        match result {
            Ok(appointment_id) => moves.push(pb::Move {
                referral_id: planned
                    .from
                    .referral_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                patient_id: planned.from.patient_id.to_string(),
                from_appointment_id: planned.from.id.to_string(),
                from_slot_id: planned.from.slot_id.to_string(),
                appointment_id: appointment_id.to_string(),
                to_slot_id: planned.slot_id.to_string(),
                wait_days: t.wait_days,
                breach: t.breach,
                cost: t.cost,
            }),
            Err(reason) => not_moved.push(pb::NotMoved {
                appointment_id: planned.from.id.to_string(),
                reason,
            }),
        }
    }
    Ok(pb::RebookDisplacedResponse {
        moves,
        not_moved,
        optimal: solved.solution.status == medsec_scheduler::Status::Optimal,
        objective: solved.solution.objective,
    })
}

pub(super) async fn offer_freed_slot(
    api: &SchedulingApi,
    request: Request<pb::OfferFreedSlotRequest>,
) -> Result<pb::SlotOffer, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let slot_id = r.id("slot_id", &request.slot_id);
    let until = r.instant("hold_until", request.hold_until.as_ref());
    let now = Utc::now();
    if let Some(until) = until {
        if until <= now {
            r.add("hold_until", "must be in the future");
        } else if until - now > optimise::MAX_HOLD {
            r.add("hold_until", "must be at most 14 days ahead");
        }
    }
    r.finish()?;
    let slot_id = present(slot_id, "slot_id")?;
    let until = present(until, "hold_until")?;
    let slot = diary::get_slot(db, slot_id).await?;
    let state = optimise::slot_state(&slot, now.timestamp());
    if state != "free" {
        return Err(ApiError::wrong_state(
            format!("slots/{slot_id}"),
            state,
            "offer it",
        ));
    }
    // One slot, one place, a one-day horizon: the model's optimum is the
    // waiting referral that gains most from being seen then rather than
    // after the horizon (wait, breach, preference all weighed as in a run).
    let scope = Scope {
        specialties: Some(vec![slot.specialty.clone()]),
        start: slot.date,
        end: slot.date,
        only_slot: Some(slot_id),
        exclude_referrals: optimise::cancelled_from(db, slot_id).await?,
        ..Scope::default()
    };
    let lock = RunLock::acquire(db, std::slice::from_ref(&slot.specialty)).await?;
    let run = async {
        let built = optimise::build_instance(db, &scope).await?;
        let solved = optimise::solve(built.instance).await?;
        let chosen = solved
            .assignment
            .iter()
            .enumerate()
            .find_map(|(r, s)| s.map(|s| (r, s)));
        let Some((r, s)) = chosen else {
            return Err(ApiError::FailedPrecondition {
                message: format!("slots/{slot_id} suits no waiting referral: cannot offer it"),
                kind: medsec_platform::PreconditionKind::State,
                subject: format!("slots/{slot_id}"),
            });
        };
        let referral_id = row_id(&solved.problem.referrals[r].id)?;
        let t = terms(&solved.problem, r, s);
        let held = optimise::hold(db, slot_id, referral_id, until.timestamp()).await?;
        Ok((held, referral_id, t))
    }
    .await;
    lock.release().await?;
    let (held, referral_id, t) = run?;
    let referral = referrals::get(db, referral_id).await?;
    Ok(pb::SlotOffer {
        slot: Some(slot_to_proto(&held)),
        referral: Some(referral_to_proto(&referral, today_in_london())),
        hold_until: epoch_to_proto(until.timestamp()),
        wait_days: t.wait_days,
        breach: t.breach,
        cost: t.cost,
    })
}
