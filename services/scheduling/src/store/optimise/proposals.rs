//! Proposals: a run's figures and every allocation with its cost terms,
//! stored for the client to review before committing them.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Actor, Audited as _};
use medsec_platform::db::rows_per_statement;
use medsec_platform::pagination::PageRequest;
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _, IntoActiveModel as _,
    QueryFilter as _,
};
use uuid::Uuid;

use crate::domain::allocation::{Horizon, Outcome, ProposalStatus};
use crate::store::entities::{proposal, proposal_allocation};
use crate::store::optimise::instance::LeftOut;

/// Allocations inserted per statement: about 300 bytes each (13 columns,
/// five of them UUIDs), so a statement stays under the size that waits for
/// a delayed ACK (see [`rows_per_statement`]).
const CHUNK: usize = rows_per_statement(300);

/// Left-out referrals listed on a proposal with why; all are counted.
pub const MAX_LEFT_OUT_LISTED: usize = 100;

/// The left-out referrals a proposal lists.
pub fn left_out(row: &proposal::Model) -> Vec<LeftOut> {
    serde_json::from_str(&row.left_out).unwrap_or_default()
}

/// Stores a run of `specialty` (`None`: every specialty) over `horizon` as
/// a proposal with every allocation and its terms; each allocation is
/// audited against its patient (the proposal itself when it allocates no
/// one).
pub async fn store(
    db: &DatabaseConnection,
    specialty: Option<&str>,
    horizon: Horizon,
    outcome: &Outcome,
    left_out: &[LeftOut],
    run_seconds: f64,
    actor: &Actor,
) -> Result<proposal::Model, ApiError> {
    let id = Uuid::now_v7();
    let listed = &left_out[..left_out.len().min(MAX_LEFT_OUT_LISTED)];
    let header = proposal::Model {
        id,
        specialty: specialty.unwrap_or_default().to_owned(),
        horizon_start: horizon.start,
        horizon_end: horizon.end,
        status: ProposalStatus::Proposed.as_str().to_owned(),
        optimal: outcome.optimal,
        objective: outcome.objective,
        greedy_objective: outcome.greedy_objective,
        referrals: outcome.referrals,
        slots: outcome.slots,
        allocated: outcome.allocated,
        unallocated: outcome.unallocated,
        breaches: outcome.breaches,
        greedy_breaches: outcome.greedy_breaches,
        mean_wait_days: outcome.mean_wait_days,
        max_wait_days: outcome.max_wait_days,
        solve_seconds: outcome.solve_seconds,
        run_seconds,
        create_time: Utc::now(),
        commit_time: None,
        booked: 0,
        not_booked: 0,
        referrals_left_out: i32::try_from(left_out.len()).unwrap_or(i32::MAX),
        left_out: serde_json::to_string(listed).map_err(ApiError::internal)?,
    };
    let rows: Vec<_> = outcome
        .placements
        .iter()
        .map(|placed| proposal_allocation::Model {
            proposal_id: id,
            referral_id: placed.referral_id,
            patient_id: placed.patient_id,
            slot_id: placed.slot_id,
            specialty: placed.specialty.clone(),
            slot_date: placed.slot_date,
            clinician_id: placed.clinician_id,
            wait_days: placed.terms.wait_days,
            breach: placed.terms.breach,
            preference_missed: placed.terms.preference_missed,
            cost: placed.terms.cost,
            appointment_id: None,
            not_booked_reason: None,
        })
        .collect();
    audit::audited(db, actor, async |txn| {
        proposal::Entity::insert(header.into_active_model())
            .exec_without_returning(txn)
            .await?;
        for chunk in rows.chunks(CHUNK) {
            proposal_allocation::Entity::insert_many(
                chunk.iter().cloned().map(|row| row.into_active_model()),
            )
            .exec_without_returning(txn)
            .await?;
        }
        let stored = get(txn, id).await?;
        let mut accesses: Vec<_> = rows.iter().map(|row| row.access()).collect();
        if accesses.is_empty() {
            accesses.push(stored.access());
        }
        Ok((stored, accesses))
    })
    .await
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<proposal::Model, ApiError> {
    proposal::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("proposal", id.to_string()))
}

/// Reads a proposal's figures, auditing the read.
pub async fn read(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<proposal::Model, ApiError> {
    audit::read_one(db, actor, async |txn| get(txn, id).await).await
}

/// A page of proposals (of one specialty, or all), by id; audited.
pub async fn list(
    db: &DatabaseConnection,
    specialty: Option<&str>,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<proposal::Model>, ApiError> {
    let mut query = proposal::Entity::find();
    if let Some(specialty) = specialty {
        query = query.filter(proposal::Column::Specialty.eq(specialty));
    }
    audit::read(db, actor, async |txn| {
        let rows = page.by_id(query, proposal::Column::Id)?.all(txn).await?;
        let served = audit::served(page, &rows, "proposals");
        Ok((rows, served))
    })
    .await
}

/// A page of a proposal's allocations, by referral id; each allocation
/// served is audited against its patient.
pub async fn list_allocations(
    db: &DatabaseConnection,
    proposal_id: Uuid,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<proposal_allocation::Model>, ApiError> {
    let query = proposal_allocation::Entity::find()
        .filter(proposal_allocation::Column::ProposalId.eq(proposal_id));
    audit::read(db, actor, async |txn| {
        get(txn, proposal_id).await?;
        let rows = page
            .by_id(query, proposal_allocation::Column::ReferralId)?
            .all(txn)
            .await?;
        let served = audit::served(page, &rows, &format!("proposals/{proposal_id}/allocations"));
        Ok((rows, served))
    })
    .await
}
