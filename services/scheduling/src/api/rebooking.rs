//! The optimiser for one referral, one slot or one displacement at a time:
//! BookBestSlot, RebookDisplaced and OfferFreedSlot. Every choice is the
//! allocation model's (`domain::allocation`).

use chrono::Utc;
use medsec_platform::audit::Actor;
use medsec_platform::time::today_in_london;
use medsec_platform::{ApiError, PreconditionKind, Reader};
use medsec_proto::scheduling::v1 as pb;
use tokio::time::Instant;
use tonic::Request;
use uuid::Uuid;

use super::SchedulingApi;
use super::appointments::appointment_to_proto;
use super::diary::slot_to_proto;
use super::referrals::referral_to_proto;
use super::staff::epoch_to_proto;
use crate::domain::allocation::Horizon;
use crate::domain::displacement::{Displacement, NotMoved, PlannedMove};
use crate::domain::{offer, ranking};
use crate::store::optimise::{RunLock, Scope, best_slot, holds, instance, rebook};
use crate::store::{diary, referrals};

pub(super) async fn book_best_slot(
    api: &SchedulingApi,
    request: Request<pb::BookBestSlotRequest>,
) -> Result<pb::BookBestSlotResponse, ApiError> {
    let db = &api.db;
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let referral_id = r.id("referral_id", &request.referral_id);
    let horizon = Horizon::read(
        &mut r,
        ("from_date", &request.from_date),
        ("to_date", &request.to_date),
    );
    let wanted = r.check("max_candidates", ranking::wanted(request.max_candidates));
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let (referral_id, horizon, wanted) = r.finish((referral_id, horizon, wanted))?;

    let referral = referrals::read(db, referral_id, &actor).await?;
    if request.book
        && let Some(earlier) = best_slot::replayed(db, key.as_ref(), &actor).await?
    {
        return Ok(pb::BookBestSlotResponse {
            candidates: Vec::new(),
            appointment: Some(appointment_to_proto(&earlier)),
        });
    }
    ranking::ensure_waiting(referral_id, &referral.status)?;
    let mut scope = Scope::new(vec![referral.specialty.clone()], horizon);
    scope.referrals = Some(vec![referral_id]);
    let built = instance::build(db, &scope).await?;
    if let Some(out) = built.left_out.first() {
        return Err(ApiError::precondition(
            PreconditionKind::State,
            format!("referrals/{}", out.referral_id),
            format!(
                "referrals/{} cannot be scheduled: it {}",
                out.referral_id, out.reason
            ),
        ));
    }
    let start_at = |slot_id| built.slots.get(&slot_id).map(|slot| slot.start_at);
    let ranked = ranking::rank(&built.instance, referral_id, start_at, wanted)?;
    let candidates = ranked
        .iter()
        .filter_map(|candidate| {
            let slot = built.slots.get(&candidate.slot_id)?;
            Some(pb::SlotCandidate {
                slot: Some(slot_to_proto(slot)),
                wait_days: candidate.terms.wait_days,
                breach: candidate.terms.breach,
                preference_missed: candidate.terms.preference_missed,
                cost: candidate.terms.cost,
            })
        })
        .collect();
    let mut appointment = None;
    if request.book {
        let slots: Vec<Uuid> = ranked.iter().map(|candidate| candidate.slot_id).collect();
        match best_slot::book_first(
            db,
            key.as_ref(),
            referral.patient_id,
            referral_id,
            &slots,
            &actor,
        )
        .await?
        {
            Ok(booked) => appointment = Some(appointment_to_proto(&booked)),
            Err(reasons) => return Err(ranking::none_bookable(referral_id, horizon, &reasons)),
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
    let actor = Actor::of(&request);
    let deadline = api.runs.deadline(Instant::now(), &request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let displacement = Displacement::read(&mut r, &request.absence_id, &request.appointment_ids);
    let horizon = Horizon::read(
        &mut r,
        ("horizon_start", &request.horizon_start),
        ("horizon_end", &request.horizon_end),
    );
    let (displacement, horizon) = r.finish((displacement, horizon))?;

    // A first read finds the specialties to lock; the set is read again
    // under the lock, so a run that finished meanwhile (and moved some of
    // them) is seen, and nothing is moved twice.
    let first = displacement.select(rebook::find(db, &displacement, &actor).await?, None)?;
    if first.is_empty() {
        return Ok(nothing_moved(first.not_moved));
    }
    let locked = first.specialties();
    RunLock::hold(db, &locked, api.runs.lease(), async || {
        let found = rebook::find(db, &displacement, &actor).await?;
        let selection = displacement.select(found, Some(&locked))?;
        if selection.is_empty() {
            return Ok(nothing_moved(selection.not_moved));
        }
        let mut scope = Scope::new(locked.clone(), horizon);
        scope.referrals = Some(selection.referral_ids());
        scope.exclude_slots = selection.came_from();
        scope.exclude_appointments = selection.appointment_ids();
        let built = instance::build(db, &scope).await?;
        let solved = api.runs.solve_within(deadline, built.instance).await?;
        let (planned, mut not_moved) = selection.plan(&solved)?;
        let results = rebook::apply_moves(db, &planned, &actor).await?;
        let mut moves = Vec::new();
        for (planned, result) in planned.iter().zip(results) {
            match result {
                Ok(appointment_id) => moves.push(move_to_proto(planned, appointment_id)),
                Err(reason) => not_moved.push(NotMoved {
                    appointment_id: planned.from.id,
                    reason,
                }),
            }
        }
        Ok(pb::RebookDisplacedResponse {
            moves,
            not_moved: not_moved.into_iter().map(not_moved_to_proto).collect(),
            optimal: solved.optimal(),
            objective: solved.solution.objective,
        })
    })
    .await
}

fn nothing_moved(not_moved: Vec<NotMoved>) -> pb::RebookDisplacedResponse {
    pb::RebookDisplacedResponse {
        moves: Vec::new(),
        not_moved: not_moved.into_iter().map(not_moved_to_proto).collect(),
        optimal: true,
        objective: 0,
    }
}

fn not_moved_to_proto(not_moved: NotMoved) -> pb::NotMoved {
    pb::NotMoved {
        appointment_id: not_moved.appointment_id.to_string(),
        reason: not_moved.reason,
    }
}

fn move_to_proto(planned: &PlannedMove, appointment_id: Uuid) -> pb::Move {
    let from = &planned.from;
    pb::Move {
        referral_id: from
            .referral
            .as_ref()
            .map(|r| r.id.to_string())
            .unwrap_or_default(),
        patient_id: from.patient_id.to_string(),
        from_appointment_id: from.id.to_string(),
        from_slot_id: from.slot_id.to_string(),
        appointment_id: appointment_id.to_string(),
        to_slot_id: planned.to_slot.to_string(),
        wait_days: planned.terms.wait_days,
        breach: planned.terms.breach,
        cost: planned.terms.cost,
    }
}

pub(super) async fn offer_freed_slot(
    api: &SchedulingApi,
    request: Request<pb::OfferFreedSlotRequest>,
) -> Result<pb::SlotOffer, ApiError> {
    let db = &api.db;
    let actor = Actor::of(&request);
    let deadline = api.runs.deadline(Instant::now(), &request);
    let now = Utc::now();
    let mut r = Reader::new();
    let slot_id = r.id("slot_id", &request.get_ref().slot_id);
    let until = r
        .instant("hold_until", request.get_ref().hold_until.as_ref())
        .and_then(|until| r.check("hold_until", offer::hold_until(until, now)));
    let (slot_id, until) = r.finish((slot_id, until))?;

    let slot = diary::get_slot(db, slot_id).await?;
    offer::ensure_free(slot_id, holds::slot_state(&slot, now.timestamp()))?;
    let mut scope = Scope::new(vec![slot.specialty.clone()], Horizon::day(slot.date));
    scope.only_slot = Some(slot_id);
    scope.exclude_referrals = holds::cancelled_from(db, slot_id).await?;
    let specialty = std::slice::from_ref(&slot.specialty);
    let (held, chosen) = RunLock::hold(db, specialty, api.runs.lease(), async || {
        let built = instance::build(db, &scope).await?;
        let solved = api.runs.solve_within(deadline, built.instance).await?;
        let chosen = offer::choose(slot_id, &solved)?;
        let held = holds::hold(db, slot_id, chosen.referral_id, until.timestamp(), &actor).await?;
        Ok((held, chosen))
    })
    .await?;
    let (held, referral) = held;
    Ok(pb::SlotOffer {
        slot: Some(slot_to_proto(&held)),
        referral: Some(referral_to_proto(&referral, today_in_london())),
        hold_until: epoch_to_proto(until.timestamp()),
        wait_days: chosen.terms.wait_days,
        breach: chosen.terms.breach,
        cost: chosen.terms.cost,
    })
}
