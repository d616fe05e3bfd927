//! Proposals of the optimising scheduler: ProposeAllocation, GetProposal,
//! ListProposals, ListProposalAllocations and CommitProposal.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use medsec_platform::audit::Actor;
use medsec_platform::config::SchedulingSettings;
use medsec_platform::pagination::keys;
use medsec_platform::request::{read_id, time_left};
use medsec_platform::time::{format_civil_date, to_timestamp};
use medsec_platform::{ApiError, Reader};
use medsec_proto::scheduling::v1 as pb;
use medsec_scheduler::{Instance, SolveOptions};
use tonic::Request;

use super::SchedulingApi;
use crate::domain::allocation::{self, Horizon, ProposalStatus, Solved};
use crate::domain::text;
use crate::store::entities::{proposal, proposal_allocation};
use crate::store::optimise::{self, RunLock, Scope, instance, proposals};

/// Admission of optimisation runs: how many solve at once, with how many
/// threads, how large they may be, how much of a call's deadline their
/// storing needs, and the lease of their run lock.
#[derive(Debug, Clone)]
pub(super) struct Runs {
    permits: Arc<Semaphore>,
    threads: usize,
    max_pairs: u64,
    store_margin: Duration,
    request_timeout: Duration,
    lease: Duration,
}

impl Runs {
    pub(super) fn new(settings: &SchedulingSettings, request_timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(settings.max_concurrent_runs.max(1))),
            threads: settings.solve_threads.max(1),
            max_pairs: settings.max_run_pairs,
            store_margin: Duration::from_millis(settings.store_margin_millis),
            request_timeout,
            lease: settings.run_lease(),
        }
    }

    /// The lease of a run's lock ([`RunLock::hold`]).
    pub(super) fn lease(&self) -> Duration {
        self.lease
    }

    /// A permit to solve, waited for at most until `deadline` less the time
    /// storing needs; `RESOURCE_EXHAUSTED` when none comes free.
    async fn admit(&self, deadline: Instant) -> Result<OwnedSemaphorePermit, ApiError> {
        let patience = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(self.store_margin);
        tokio::time::timeout(patience, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                ApiError::ResourceExhausted(
                    "every optimiser is busy with another run; retry later".to_owned(),
                )
            })?
            .map_err(ApiError::internal)
    }

    /// How the solve of a run due by `deadline` may go: its threads, and a
    /// time limit that leaves the storing margin.
    fn options(&self, deadline: Instant) -> SolveOptions {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(self.store_margin);
        SolveOptions {
            time_limit: Some(left.as_secs_f64().max(0.1)),
            threads: self.threads,
            ..SolveOptions::default()
        }
    }

    /// Refuses a run larger than configured, before solving it.
    fn check_size(&self, instance: &Instance) -> Result<(), ApiError> {
        let pairs = u64::try_from(instance.referrals.len())
            .unwrap_or(u64::MAX)
            .saturating_mul(u64::try_from(instance.slots.len()).unwrap_or(u64::MAX));
        if pairs > self.max_pairs {
            return Err(ApiError::ResourceExhausted(format!(
                "the run has {} referrals and {} slots, more than this server solves \
                 (scheduling.max_run_pairs); run one specialty or a shorter horizon",
                instance.referrals.len(),
                instance.slots.len()
            )));
        }
        Ok(())
    }
}

impl Runs {
    /// Solves `instance` for a call due by `deadline`: admitted, within the
    /// size limit, stopped before the deadline with the best allocation
    /// found. The permit goes with the solve, so a call given up on keeps it
    /// until the solve ends.
    pub(super) async fn solve_within(
        &self,
        deadline: Instant,
        instance: Instance,
    ) -> Result<Solved, ApiError> {
        let permit = self.admit(deadline).await?;
        self.check_size(&instance)?;
        solve(instance, self.options(deadline), permit).await
    }

    /// When a call that started at `started` is due.
    pub(super) fn deadline<T>(&self, started: Instant, request: &Request<T>) -> Instant {
        started + time_left(request, self.request_timeout)
    }
}

/// Solves on the blocking pool, so a long solve never stalls the runtime
/// threads serving other RPCs; `permit` is held until the solve ends.
async fn solve(
    instance: Instance,
    options: SolveOptions,
    permit: OwnedSemaphorePermit,
) -> Result<Solved, ApiError> {
    // The solve's spans belong to the RPC's trace.
    let span = tracing::Span::current();
    let solved = tokio::task::spawn_blocking(move || {
        let solved = span.in_scope(|| allocation::solve(&instance, &options));
        drop(permit);
        solved
    })
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
    let runs = api.runs.clone();
    let deadline = runs.deadline(started, &request);
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
    let permit = runs.admit(deadline).await?;
    let db = db.clone();
    // The run is a task of its own, holding its permit and run lock until it
    // has stored its proposal: a client that gives up cannot free them for a
    // second solve while this one still keeps the cores busy.
    let run = tokio::spawn(async move {
        RunLock::hold(&db, &specialties, runs.lease(), async || {
            let built = instance::build(&db, &scope).await?;
            runs.check_size(&built.instance)?;
            // The solve itself holds the permit, to its end.
            let outcome = solve(built.instance, runs.options(deadline), permit)
                .await?
                .outcome()?;
            let run_seconds = started.elapsed().as_secs_f64();
            proposals::store(
                &db,
                specialty.as_deref(),
                horizon,
                &outcome,
                &built.left_out,
                run_seconds,
                &actor,
            )
            .await
        })
        .await
    });
    let stored = run.await.map_err(ApiError::internal)??;
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
        referrals_left_out: row.referrals_left_out,
        left_out: proposals::left_out(row)
            .into_iter()
            .map(|out| pb::LeftOutReferral {
                referral_id: out.referral_id.to_string(),
                reason: out.reason,
            })
            .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(store_margin_millis: u64) -> Runs {
        Runs::new(
            &SchedulingSettings {
                max_message_bytes: 1 << 20,
                max_concurrent_runs: 1,
                solve_threads: 1,
                max_run_pairs: 10,
                store_margin_millis,
                run_lease_secs: 120,
                automatic_offers: false,
                automatic_offer_hold_hours: 48,
            },
            Duration::from_secs(30),
        )
    }

    #[tokio::test]
    async fn a_run_waits_for_a_permit_only_until_its_deadline() {
        let runs = runs(100);
        let held = runs
            .admit(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        let refused = runs
            .admit(Instant::now() + Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ApiError::ResourceExhausted(_)),
            "{refused:?}"
        );
        drop(held);
        let _again = runs
            .admit(Instant::now() + Duration::from_millis(300))
            .await
            .expect("a permit free again");
    }

    #[tokio::test]
    async fn a_solve_stops_before_the_deadline_leaving_the_storing_margin() {
        let runs = runs(3000);
        let options = runs.options(Instant::now() + Duration::from_secs(10));
        let limit = options.time_limit.unwrap();
        assert!((6.5..=7.0).contains(&limit), "{limit}");
        assert_eq!(options.threads, 1);
        // A deadline inside the margin still lets the solve return its best.
        let late = runs.options(Instant::now() + Duration::from_secs(1));
        assert_eq!(late.time_limit, Some(0.1));
    }
}
