//! Proposals of the optimising scheduler: ProposeAllocation, GetProposal,
//! ListProposals, ListProposalAllocations and CommitProposal.

use std::time::Instant;

use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::request::read_id;
use medsec_platform::time::{format_civil_date, to_timestamp};
use medsec_platform::{ApiError, Reader};
use medsec_proto::scheduling::v1 as pb;
use medsec_scheduler::Instance;
use tonic::Request;

use super::SchedulingApi;
use crate::domain::allocation::{self, Horizon, ProposalStatus, Solved};
use crate::domain::text;
use crate::store::entities::{proposal, proposal_allocation};
use crate::store::optimise::{self, RunLock, Scope, instance, proposals};

/// Solves on the blocking pool, so a long solve never stalls the runtime
/// threads serving other RPCs. The solve runs to its end even if the RPC is
/// cancelled meanwhile; the run lock is released when the RPC's future is
/// dropped.
pub(super) async fn solve(instance: Instance) -> Result<Solved, ApiError> {
    let solved = tokio::task::spawn_blocking(move || allocation::solve(&instance))
        .await
        .map_err(ApiError::internal)?;
    Ok(solved?)
}

/// An optional specialty (a run's or a filter's): empty is every specialty.
fn optional_specialty(r: &mut Reader, text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    r.check("specialty", text::specialty(text))
}

pub(super) async fn propose(
    api: &SchedulingApi,
    request: Request<pb::ProposeAllocationRequest>,
) -> Result<pb::Proposal, ApiError> {
    let started = Instant::now();
    let db = &api.db;
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let specialty = optional_specialty(&mut r, &request.specialty);
    let horizon = Horizon::read(
        &mut r,
        ("horizon_start", &request.horizon_start),
        ("horizon_end", &request.horizon_end),
    );
    let horizon = r.finish(horizon)?;
    let specialties = match &specialty {
        Some(one) => vec![one.clone()],
        None => instance::specialties(db, horizon).await?,
    };
    let scope = Scope::new(specialties.clone(), horizon);
    let stored = RunLock::hold(db, &specialties, async || {
        let built = instance::build(db, &scope).await?;
        let outcome = solve(built.instance).await?.outcome()?;
        let run_seconds = started.elapsed().as_secs_f64();
        proposals::store(
            db,
            specialty.as_deref(),
            horizon,
            &outcome,
            run_seconds,
            &actor,
        )
        .await
    })
    .await?;
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

pub(super) async fn get(
    api: &SchedulingApi,
    request: Request<pb::GetProposalRequest>,
) -> Result<pb::Proposal, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
    Ok(proposal_to_proto(
        &proposals::read(&api.db, id, &actor).await?,
    ))
}

pub(super) async fn list(
    api: &SchedulingApi,
    request: Request<pb::ListProposalsRequest>,
) -> Result<pb::ListProposalsResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let specialty = optional_specialty(&mut r, &request.specialty);
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("proposals", &specialty, size, token)?;
    let rows = proposals::list(&api.db, specialty.as_deref(), &page, &actor).await?;
    let (proposals, next_page_token) = page.tail(rows, |row| keys::id(row.id), proposal_to_proto);
    Ok(pb::ListProposalsResponse {
        proposals,
        next_page_token,
    })
}

pub(super) async fn list_allocations(
    api: &SchedulingApi,
    request: Request<pb::ListProposalAllocationsRequest>,
) -> Result<pb::ListProposalAllocationsResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("proposal_id", &request.proposal_id);
    // A token is good only for the allocations of the proposal it came from.
    let filters = id.map(|id| id.to_string()).unwrap_or_default();
    let page = r.page(request.page_size, &request.page_token, &filters);
    let (id, page) = r.finish((id, page))?;
    let rows = proposals::list_allocations(&api.db, id, &page, &actor).await?;
    let (allocations, next_page_token) =
        page.tail(rows, |row| keys::id(row.referral_id), allocation_to_proto);
    Ok(pb::ListProposalAllocationsResponse {
        allocations,
        next_page_token,
    })
}

pub(super) async fn commit(
    api: &SchedulingApi,
    request: Request<pb::CommitProposalRequest>,
) -> Result<pb::CommitProposalResponse, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
    let committed = optimise::commit(&api.db, id, &actor).await?;
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

fn proposal_to_proto(row: &proposal::Model) -> pb::Proposal {
    pb::Proposal {
        id: row.id.to_string(),
        specialty: row.specialty.clone(),
        horizon_start: format_civil_date(row.horizon_start),
        horizon_end: format_civil_date(row.horizon_end),
        status: ProposalStatus::stored_to_proto(&row.status),
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
