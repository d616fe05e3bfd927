//! Optimisation runs over the tables: model-v1 instances built from waiting
//! referrals and free slots, the one-run-per-specialty lock, proposals and
//! their allocations, and committing them through the booking path.
//!
//! Instance ids are the database ids (UUID text), so a solution maps back to
//! rows without a side table.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::db::begin_write;
use medsec_platform::pagination::PageRequest;
use medsec_scheduler::evaluate::{self, Assignment};
use medsec_scheduler::model::{self as m, Instance};
use medsec_scheduler::{Problem, Solution, SolveOptions};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait as _, IntoActiveModel as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, Statement, TransactionTrait as _,
};
use serde::Deserialize;
use uuid::Uuid;

use super::appointments::{Booking, book_in};
use super::diary::not_held;
use super::entities::{
    appointment, optimisation_lock, proposal, proposal_allocation, referral, slot,
};
use super::{after_id, db_error};
use crate::domain::appointment::HOLDING;
use crate::domain::{AppointmentStatus, Kind, Priority, ReferralStatus, london};

/// What goes into an instance.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only these specialties; `None`: every specialty.
    pub specialties: Option<Vec<String>>,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Only these referrals, whatever their status (rebooking); `None`:
    /// every waiting referral.
    pub referrals: Option<Vec<Uuid>>,
    /// Referrals left out (an offer is not made to whoever just gave the
    /// slot up).
    pub exclude_referrals: Vec<Uuid>,
    /// Only this slot, with one place (an offer).
    pub only_slot: Option<Uuid>,
    /// Slots never offered (those a displacement came from).
    pub exclude_slots: Vec<Uuid>,
    /// Appointments not counted as the patient's other commitments (the ones
    /// being moved).
    pub exclude_appointments: Vec<Uuid>,
}

/// An instance with the rows it was built from.
#[derive(Debug)]
pub struct Built {
    pub instance: Instance,
    pub slots: HashMap<Uuid, slot::Model>,
    pub referrals: HashMap<Uuid, referral::Model>,
}

/// One stored unavailable period, as `referrals.unavailable` holds it.
#[derive(Debug, Deserialize)]
struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

fn model_priority(stored: &str) -> Option<m::Priority> {
    Some(match Priority::from_stored(stored)? {
        Priority::TwoWeekWait => m::Priority::TwoWeekWait,
        Priority::Urgent => m::Priority::Urgent,
        Priority::Routine => m::Priority::Routine,
    })
}

fn model_kind(stored: &str) -> Option<m::Kind> {
    Some(match Kind::from_stored(stored)? {
        Kind::New => m::Kind::New,
        Kind::FollowUp => m::Kind::FollowUp,
    })
}

/// Builds the model-v1 instance of `scope`: referrals with their recorded
/// unavailability plus every date on which the patient already holds an
/// appointment (the model allows one slot per patient per date), and free
/// slots with their remaining places (busy-unavailable and held slots left
/// out).
pub async fn build_instance(db: &impl ConnectionTrait, scope: &Scope) -> Result<Built, ApiError> {
    let mut referral_query = referral::Entity::find();
    match &scope.referrals {
        Some(ids) => {
            referral_query = referral_query.filter(referral::Column::Id.is_in(ids.clone()))
        }
        None => {
            referral_query = referral_query
                .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()));
        }
    }
    if let Some(specialties) = &scope.specialties {
        referral_query =
            referral_query.filter(referral::Column::Specialty.is_in(specialties.clone()));
    }
    if !scope.exclude_referrals.is_empty() {
        referral_query =
            referral_query.filter(referral::Column::Id.is_not_in(scope.exclude_referrals.clone()));
    }
    let referral_rows = referral_query
        .order_by_asc(referral::Column::Id)
        .all(db)
        .await?;

    let now = Utc::now().timestamp();
    let mut slot_query = slot::Entity::find()
        .filter(slot::Column::Date.gte(scope.start))
        .filter(slot::Column::Date.lte(scope.end))
        .filter(slot::Column::Unavailable.eq(false))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)));
    // A slot held for a referral is that referral's to take: an instance of
    // just that referral (BookBestSlot) sees it; any other leaves it out.
    slot_query = match scope.referrals.as_deref() {
        Some([only]) => slot_query.filter(
            Condition::any()
                .add(not_held(now))
                .add(slot::Column::HeldForReferral.eq(*only)),
        ),
        _ => slot_query.filter(not_held(now)),
    };
    if let Some(specialties) = &scope.specialties {
        slot_query = slot_query.filter(slot::Column::Specialty.is_in(specialties.clone()));
    }
    if let Some(id) = scope.only_slot {
        slot_query = slot_query.filter(slot::Column::Id.eq(id));
    }
    if !scope.exclude_slots.is_empty() {
        slot_query = slot_query.filter(slot::Column::Id.is_not_in(scope.exclude_slots.clone()));
    }
    let slot_rows = slot_query.order_by_asc(slot::Column::Id).all(db).await?;

    // Appointments held on the horizon's dates, by patient; a day either side
    // covers any UTC offset.
    let day_start = |date: NaiveDate| {
        london::start_of_day(date)
            .map(|t| t.timestamp())
            .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
    };
    let from = day_start(scope.start) - 86_400;
    let to = day_start(scope.end) + 2 * 86_400;
    let mut query = appointment::Entity::find()
        .filter(appointment::Column::Status.is_in(HOLDING.map(AppointmentStatus::as_str)))
        .filter(appointment::Column::StartAt.gte(from))
        .filter(appointment::Column::StartAt.lt(to));
    if !scope.exclude_appointments.is_empty() {
        query = query.filter(appointment::Column::Id.is_not_in(scope.exclude_appointments.clone()));
    }
    let mut busy_dates: HashMap<Uuid, BTreeSet<NaiveDate>> = HashMap::new();
    for held in query.all(db).await? {
        let date =
            london::local_date(DateTime::from_timestamp(held.start_at, 0).unwrap_or_default());
        busy_dates.entry(held.patient_id).or_default().insert(date);
    }

    let mut referrals = Vec::with_capacity(referral_rows.len());
    for row in &referral_rows {
        let (Some(priority), Some(kind)) = (model_priority(&row.priority), model_kind(&row.kind))
        else {
            return Err(ApiError::internal(format!(
                "referral {} has an unknown priority or kind",
                row.id
            )));
        };
        let periods: Vec<Period> = serde_json::from_str(&row.unavailable).unwrap_or_default();
        let mut unavailable: Vec<m::DateRange> = periods
            .into_iter()
            .map(|p| m::DateRange {
                from: p.from,
                to: p.to,
            })
            .collect();
        if let Some(dates) = busy_dates.get(&row.patient_id) {
            unavailable.extend(dates.iter().map(|d| m::DateRange { from: *d, to: *d }));
        }
        referrals.push(m::Referral {
            id: row.id.to_string(),
            patient: row.patient_id.to_string(),
            specialty: row.specialty.clone(),
            priority,
            clock_start: row.clock_start,
            kind,
            earliest: row.earliest,
            unavailable,
            required_clinician: row.required_clinician.map(|c| c.to_string()),
            preferred_clinician: row.preferred_clinician.map(|c| c.to_string()),
            due: None,
        });
    }
    let mut slots = Vec::with_capacity(slot_rows.len());
    for row in &slot_rows {
        let Some(kind) = model_kind(&row.kind) else {
            return Err(ApiError::internal(format!(
                "slot {} has an unknown kind",
                row.id
            )));
        };
        let places = i64::from(row.capacity - row.booked);
        slots.push(m::Slot {
            id: row.id.to_string(),
            specialty: row.specialty.clone(),
            clinician: row.clinician_id.to_string(),
            date: row.date,
            start: None,
            kind,
            capacity: if scope.only_slot.is_some() { 1 } else { places },
        });
    }
    Ok(Built {
        instance: Instance {
            horizon: m::Horizon {
                start: scope.start,
                end: scope.end,
            },
            weights: m::WeightOverrides::default(),
            slots,
            referrals,
        },
        slots: slot_rows.into_iter().map(|s| (s.id, s)).collect(),
        referrals: referral_rows.into_iter().map(|r| (r.id, r)).collect(),
    })
}

/// A solved instance.
#[derive(Debug)]
pub struct Solved {
    pub problem: Problem,
    pub solution: Solution,
    pub assignment: Assignment,
}

/// Validates and solves on the blocking pool, so a long solve never stalls
/// the runtime threads serving other RPCs.
pub async fn solve(instance: Instance) -> Result<Solved, ApiError> {
    tokio::task::spawn_blocking(move || {
        let problem = medsec_scheduler::validate(&instance).map_err(ApiError::internal)?;
        let solution = medsec_scheduler::solve(&problem, &SolveOptions::default())
            .map_err(ApiError::internal)?;
        let assignment =
            evaluate::assignment_of(&problem, &solution).map_err(ApiError::internal)?;
        Ok(Solved {
            problem,
            solution,
            assignment,
        })
    })
    .await
    .map_err(ApiError::internal)?
}

/// The model's cost terms of referral `r` in slot `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub wait_days: i32,
    pub breach: bool,
    pub preference_missed: bool,
    pub cost: i64,
}

pub fn terms(problem: &Problem, r: usize, s: usize) -> Terms {
    let referral = &problem.referrals[r];
    let slot = &problem.slots[s];
    Terms {
        wait_days: slot.day - referral.clock_start,
        breach: problem.breaches(r, Some(slot.day)),
        preference_missed: referral
            .preferred_clinician
            .is_some_and(|c| c != slot.clinician),
        cost: problem.cost(r, slot.day, slot.clinician),
    }
}

/// Parses an instance id back to the row id it was made from.
pub fn row_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(ApiError::internal)
}

// ------------------------------------------------------------ the run lock

/// How long an SQLite lock row outlives a run that died without releasing it.
const LEASE_SECONDS: i64 = 600;

/// The advisory-lock key of a specialty: FNV-1a of a namespaced name, so
/// keys do not collide with the migration lock or other users.
pub fn lock_key(specialty: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "medsec.scheduling.optimise/"
        .bytes()
        .chain(specialty.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

fn run_in_progress(specialty: &str) -> ApiError {
    ApiError::FailedPrecondition {
        message: format!(
            "specialties/{specialty} is being optimised by another run: cannot start another until it finishes"
        ),
        kind: medsec_platform::PreconditionKind::State,
        subject: format!("specialties/{specialty}"),
    }
}

/// One optimisation per specialty at a time. On PostgreSQL a transaction
/// holds `pg_try_advisory_xact_lock` per specialty for the whole run (it
/// only holds locks, so other RPCs are not blocked, and a crashed run's
/// locks go with its connection). SQLite has no advisory locks and a long
/// write transaction would block every booking, so there a short
/// transaction claims one row per specialty with a lease, deleted on
/// release (a crashed run's rows lapse after the lease).
#[derive(Debug)]
pub struct RunLock {
    held: Option<Held>,
}

/// At most this many runs hold a PostgreSQL lock connection at once in one
/// process. A run holds its lock's connection and uses a second for its
/// queries, so with the default pool of 10 this leaves connections for every
/// other RPC; further runs wait their turn instead of starving the pool.
const MAX_CONCURRENT_RUNS: usize = 4;

static RUN_SLOTS: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| {
        std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_RUNS))
    });

#[derive(Debug)]
enum Held {
    Postgres(DatabaseTransaction, tokio::sync::OwnedSemaphorePermit),
    Sqlite {
        db: DatabaseConnection,
        holder: Uuid,
    },
}

impl RunLock {
    /// Takes every specialty's lock, or none: FAILED_PRECONDITION naming the
    /// first specialty another run holds.
    pub async fn acquire(
        db: &DatabaseConnection,
        specialties: &[String],
    ) -> Result<Self, ApiError> {
        let mut sorted: Vec<&String> = specialties.iter().collect();
        sorted.sort();
        sorted.dedup();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                let permit = RUN_SLOTS
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(ApiError::internal)?;
                let txn = db.begin().await?;
                for specialty in sorted {
                    let row = txn
                        .query_one_raw(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            "SELECT pg_try_advisory_xact_lock($1) AS locked",
                            [lock_key(specialty).into()],
                        ))
                        .await?;
                    let locked: bool = match row {
                        Some(row) => row.try_get("", "locked")?,
                        None => false,
                    };
                    if !locked {
                        txn.rollback().await?;
                        return Err(run_in_progress(specialty));
                    }
                }
                Ok(Self {
                    held: Some(Held::Postgres(txn, permit)),
                })
            }
            _ => {
                let holder = Uuid::now_v7();
                let now = Utc::now().timestamp();
                let txn = begin_write(db).await?;
                for specialty in sorted {
                    let row = optimisation_lock::Model {
                        specialty: specialty.clone(),
                        holder,
                        expires_at: now + LEASE_SECONDS,
                    };
                    // Takes a free row, or one whose lease lapsed; a live
                    // holder's row is left alone (0 rows).
                    let claimed = optimisation_lock::Entity::insert(row.into_active_model())
                        .on_conflict(
                            OnConflict::column(optimisation_lock::Column::Specialty)
                                .update_columns([
                                    optimisation_lock::Column::Holder,
                                    optimisation_lock::Column::ExpiresAt,
                                ])
                                .action_and_where(
                                    Expr::col((
                                        optimisation_lock::Entity,
                                        optimisation_lock::Column::ExpiresAt,
                                    ))
                                    .lt(now),
                                )
                                .to_owned(),
                        )
                        .exec_without_returning(&txn)
                        .await
                        .map_err(db_error)?;
                    if claimed == 0 {
                        txn.rollback().await?;
                        return Err(run_in_progress(specialty));
                    }
                }
                txn.commit().await.map_err(db_error)?;
                Ok(Self {
                    held: Some(Held::Sqlite {
                        db: db.clone(),
                        holder,
                    }),
                })
            }
        }
    }

    pub async fn release(mut self) -> Result<(), ApiError> {
        match self.held.take() {
            Some(Held::Postgres(txn, _permit)) => txn.commit().await.map_err(db_error),
            Some(Held::Sqlite { db, holder }) => {
                optimisation_lock::Entity::delete_many()
                    .filter(optimisation_lock::Column::Holder.eq(holder))
                    .exec(&db)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // A run that failed before releasing: PostgreSQL's transaction rolls
        // back (and unlocks) as it drops; SQLite's rows are freed in the
        // background, with the lease as the fallback if this cannot run.
        if let Some(Held::Sqlite { db, holder }) = self.held.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = optimisation_lock::Entity::delete_many()
                    .filter(optimisation_lock::Column::Holder.eq(holder))
                    .exec(&db)
                    .await;
            });
        }
    }
}

/// Specialties with waiting referrals or slots on the horizon's dates.
pub async fn specialties(
    db: &impl ConnectionTrait,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<String>, ApiError> {
    let mut names: BTreeSet<String> = referral::Entity::find()
        .select_only()
        .column(referral::Column::Specialty)
        .distinct()
        .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    names.extend(
        slot::Entity::find()
            .select_only()
            .column(slot::Column::Specialty)
            .distinct()
            .filter(slot::Column::Date.gte(start))
            .filter(slot::Column::Date.lte(end))
            .into_tuple::<String>()
            .all(db)
            .await?,
    );
    Ok(names.into_iter().collect())
}

// ------------------------------------------------------------ proposals

pub const PROPOSED: &str = "proposed";
pub const COMMITTED: &str = "committed";

/// Rows inserted per statement: under both databases' bound-parameter limits.
const CHUNK: usize = 1000;

/// Stores a solved run as a proposal with every allocation and its terms.
pub async fn store_proposal(
    db: &DatabaseConnection,
    specialty: Option<&str>,
    scope: &Scope,
    solved: &Solved,
    run_seconds: f64,
) -> Result<proposal::Model, ApiError> {
    let Solved {
        problem,
        solution,
        assignment,
    } = solved;
    let summary = evaluate::summarise(problem, assignment);
    let greedy = solution
        .stats
        .greedy
        .clone()
        .unwrap_or_else(|| summary.clone());
    let id = Uuid::now_v7();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let header = proposal::Model {
        id,
        specialty: specialty.unwrap_or_default().to_owned(),
        horizon_start: scope.start,
        horizon_end: scope.end,
        status: PROPOSED.to_owned(),
        optimal: solution.status == medsec_scheduler::Status::Optimal,
        objective: solution.objective,
        greedy_objective: greedy.objective,
        referrals: count(problem.referrals.len()),
        slots: count(problem.slots.len()),
        allocated: count(summary.allocated),
        unallocated: count(summary.unallocated),
        breaches: count(summary.breaches),
        greedy_breaches: count(greedy.breaches),
        mean_wait_days: summary.mean_wait_days,
        max_wait_days: i32::try_from(summary.max_wait_days).unwrap_or(i32::MAX),
        solve_seconds: solution.stats.solve_seconds,
        run_seconds,
        create_time: Utc::now(),
        commit_time: None,
        booked: 0,
        not_booked: 0,
    };
    let mut rows = Vec::with_capacity(summary.allocated);
    for (r, s) in assignment.iter().enumerate() {
        let Some(s) = *s else { continue };
        let referral = &problem.referrals[r];
        let slot = &problem.slots[s];
        let t = terms(problem, r, s);
        rows.push(proposal_allocation::Model {
            proposal_id: id,
            referral_id: row_id(&referral.id)?,
            patient_id: row_id(&problem.patients[referral.patient as usize])?,
            slot_id: row_id(&slot.id)?,
            specialty: problem.specialties[slot.specialty as usize].clone(),
            slot_date: medsec_scheduler::validate::date_of(slot.day),
            clinician_id: row_id(&problem.clinicians[slot.clinician as usize])?,
            wait_days: t.wait_days,
            breach: t.breach,
            preference_missed: t.preference_missed,
            cost: t.cost,
            appointment_id: None,
            not_booked_reason: None,
        });
    }
    let txn = begin_write(db).await?;
    proposal::Entity::insert(header.into_active_model())
        .exec_without_returning(&txn)
        .await
        .map_err(db_error)?;
    for chunk in rows.chunks(CHUNK) {
        proposal_allocation::Entity::insert_many(
            chunk.iter().cloned().map(|row| row.into_active_model()),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db_error)?;
    }
    txn.commit().await.map_err(db_error)?;
    get_proposal(db, id).await
}

pub async fn get_proposal(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<proposal::Model, ApiError> {
    proposal::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("proposal", id.to_string()))
}

pub async fn list_proposals(
    db: &impl ConnectionTrait,
    specialty: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<proposal::Model>, ApiError> {
    let mut query = proposal::Entity::find();
    if let Some(specialty) = specialty {
        query = query.filter(proposal::Column::Specialty.eq(specialty));
    }
    if let Some(after) = after_id(page)? {
        query = query.filter(proposal::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(proposal::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

pub async fn list_allocations(
    db: &impl ConnectionTrait,
    proposal_id: Uuid,
    page: &PageRequest,
) -> Result<Vec<proposal_allocation::Model>, ApiError> {
    get_proposal(db, proposal_id).await?;
    let mut condition =
        Condition::all().add(proposal_allocation::Column::ProposalId.eq(proposal_id));
    if let Some(after) = after_id(page)? {
        condition = condition.add(proposal_allocation::Column::ReferralId.gt(after));
    }
    Ok(proposal_allocation::Entity::find()
        .filter(condition)
        .order_by_asc(proposal_allocation::Column::ReferralId)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

/// Why a booking could not be made, for the caller; `None` for a fault on
/// our side, which aborts the commit instead.
pub fn refusal(error: &ApiError) -> Option<String> {
    match error {
        ApiError::Internal(_) => None,
        ApiError::InvalidArgument(violations) => Some(
            violations
                .iter()
                .map(|(field, why)| format!("{field} {why}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => Some(other.to_string()),
    }
}

/// What a commit did.
#[derive(Debug)]
pub struct Committed {
    /// The proposal, its `booked` and `not_booked` counted from the
    /// allocation rows.
    pub proposal: proposal::Model,
    /// Appointments this call booked.
    pub booked: i32,
    /// Every allocation not booked, with its reason, by referral id.
    pub not_booked: Vec<proposal_allocation::Model>,
}

/// Books a proposal's open allocations (neither an appointment nor a
/// reason recorded), one transaction per specialty; each booking runs in a
/// savepoint through [`book_in`], so one that is no longer valid (slot full
/// or held, referral no longer waiting, patient busy) is rolled back alone
/// and its reason recorded. A commit interrupted between transactions (an
/// error, a crash, a timeout) leaves open allocations, which the next
/// commit books; after a full commit there are none, so a retry books
/// nothing and reports the same outcome, counted from the rows.
pub async fn commit(db: &DatabaseConnection, id: Uuid) -> Result<Committed, ApiError> {
    get_proposal(db, id).await?;
    proposal::Entity::update_many()
        .col_expr(proposal::Column::Status, Expr::value(COMMITTED))
        .col_expr(proposal::Column::CommitTime, Expr::value(Some(Utc::now())))
        .filter(proposal::Column::Id.eq(id))
        .filter(proposal::Column::Status.eq(PROPOSED))
        .exec(db)
        .await
        .map_err(db_error)?;
    let open = proposal_allocation::Entity::find()
        .filter(proposal_allocation::Column::ProposalId.eq(id))
        .filter(proposal_allocation::Column::AppointmentId.is_null())
        .filter(proposal_allocation::Column::NotBookedReason.is_null())
        // Slots in id order within a specialty, as every booking path
        // orders its slot locks.
        .order_by_asc(proposal_allocation::Column::Specialty)
        .order_by_asc(proposal_allocation::Column::SlotId)
        .order_by_asc(proposal_allocation::Column::ReferralId)
        .all(db)
        .await?;
    let mut booked = 0;
    for group in open.chunk_by(|a, b| a.specialty == b.specialty) {
        booked += book_allocations(db, group).await?;
    }
    let outcome = proposal_allocation::Entity::find()
        .filter(proposal_allocation::Column::ProposalId.eq(id))
        .order_by_asc(proposal_allocation::Column::ReferralId)
        .all(db)
        .await?;
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let total_booked = count(
        outcome
            .iter()
            .filter(|a| a.appointment_id.is_some())
            .count(),
    );
    let not_booked: Vec<_> = outcome
        .into_iter()
        .filter(|a| a.not_booked_reason.is_some())
        .collect();
    proposal::Entity::update_many()
        .col_expr(proposal::Column::Booked, Expr::value(total_booked))
        .col_expr(
            proposal::Column::NotBooked,
            Expr::value(count(not_booked.len())),
        )
        .filter(proposal::Column::Id.eq(id))
        .exec(db)
        .await
        .map_err(db_error)?;
    Ok(Committed {
        proposal: get_proposal(db, id).await?,
        booked,
        not_booked,
    })
}

/// Books `allocations` (one specialty's, in slot id order) in one
/// transaction, each in its own savepoint, recording an appointment or a
/// reason on each row; returns how many it booked. Each allocation row is
/// claimed first (a guarded write on a still-open row), so two commits of
/// one proposal never both book an allocation: the second finds it closed
/// and leaves it alone.
pub async fn book_allocations(
    db: &DatabaseConnection,
    allocations: &[proposal_allocation::Model],
) -> Result<i32, ApiError> {
    let mut booked = 0;
    let txn = begin_write(db).await?;
    for allocation in allocations {
        let appointment_id = Uuid::now_v7();
        let claimed = proposal_allocation::Entity::update_many()
            .col_expr(
                proposal_allocation::Column::AppointmentId,
                Expr::value(Some(appointment_id)),
            )
            .filter(proposal_allocation::Column::ProposalId.eq(allocation.proposal_id))
            .filter(proposal_allocation::Column::ReferralId.eq(allocation.referral_id))
            .filter(proposal_allocation::Column::AppointmentId.is_null())
            .filter(proposal_allocation::Column::NotBookedReason.is_null())
            .exec(&txn)
            .await
            .map_err(db_error)?
            .rows_affected;
        if claimed == 0 {
            continue;
        }
        let savepoint = txn.begin().await?;
        let booking = Booking {
            slot_id: allocation.slot_id,
            patient_id: allocation.patient_id,
            referral_id: Some(allocation.referral_id),
            reason: format!("allocated by proposal {}", allocation.proposal_id),
        };
        match book_in(&savepoint, appointment_id, booking).await {
            Ok(()) => {
                savepoint.commit().await.map_err(db_error)?;
                booked += 1;
            }
            Err(error) => {
                savepoint.rollback().await.map_err(db_error)?;
                let Some(reason) = refusal(&error) else {
                    return Err(error);
                };
                record_refusal(&txn, allocation, reason).await?;
            }
        }
    }
    txn.commit().await.map_err(db_error)?;
    Ok(booked)
}

async fn record_refusal(
    txn: &DatabaseTransaction,
    row: &proposal_allocation::Model,
    reason: String,
) -> Result<(), ApiError> {
    proposal_allocation::Entity::update_many()
        .col_expr(
            proposal_allocation::Column::AppointmentId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            proposal_allocation::Column::NotBookedReason,
            Expr::value(Some(reason)),
        )
        .filter(proposal_allocation::Column::ProposalId.eq(row.proposal_id))
        .filter(proposal_allocation::Column::ReferralId.eq(row.referral_id))
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Holds a slot for one referral until `until`, if it still has a free,
/// unheld place and the referral is still waiting (checked in the same
/// transaction, after the slot, as every booking path orders its locks: a
/// booking of the referral that commits first is seen, and one that
/// commits later ends the hold).
pub async fn hold(
    db: &DatabaseConnection,
    slot_id: Uuid,
    referral_id: Uuid,
    until: i64,
) -> Result<slot::Model, ApiError> {
    let now = Utc::now().timestamp();
    let txn = begin_write(db).await?;
    let held = slot::Entity::update_many()
        .col_expr(
            slot::Column::HeldForReferral,
            Expr::value(Some(referral_id)),
        )
        .col_expr(slot::Column::HeldUntil, Expr::value(Some(until)))
        .filter(slot::Column::Id.eq(slot_id))
        .filter(slot::Column::Unavailable.eq(false))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .filter(not_held(now))
        .exec(&txn)
        .await
        .map_err(db_error)?
        .rows_affected;
    if held == 0 {
        let slot = super::diary::get_slot(&txn, slot_id).await?;
        txn.rollback().await?;
        return Err(ApiError::wrong_state(
            format!("slots/{slot_id}"),
            slot_state(&slot, now),
            "offer it",
        ));
    }
    // A write, so the referral row is locked (PostgreSQL) until commit.
    let waiting = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::col(referral::Column::Status),
        )
        .filter(referral::Column::Id.eq(referral_id))
        .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()))
        .exec(&txn)
        .await
        .map_err(db_error)?
        .rows_affected;
    if waiting == 0 {
        let status = referral::Entity::find_by_id(referral_id)
            .one(&txn)
            .await?
            .map(|r| r.status)
            .unwrap_or_else(|| "missing".to_owned());
        txn.rollback().await?;
        return Err(ApiError::wrong_state(
            format!("referrals/{referral_id}"),
            &status,
            "hold a slot for it",
        ));
    }
    txn.commit().await.map_err(db_error)?;
    super::diary::get_slot(db, slot_id).await
}

/// Referrals whose appointment in the slot was cancelled: the patients who
/// gave it up.
pub async fn cancelled_from(
    db: &impl ConnectionTrait,
    slot_id: Uuid,
) -> Result<Vec<Uuid>, ApiError> {
    Ok(appointment::Entity::find()
        .filter(appointment::Column::SlotId.eq(slot_id))
        .filter(appointment::Column::Status.eq(AppointmentStatus::Cancelled.as_str()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|a| a.referral_id)
        .collect())
}

/// A slot's FHIR state at `now`, as the API names it.
pub fn slot_state(slot: &slot::Model, now: i64) -> &'static str {
    if slot.unavailable {
        "busy-unavailable"
    } else if slot.booked >= slot.capacity {
        "busy"
    } else if super::diary::active_hold(slot, now).is_some() {
        "busy-tentative"
    } else {
        "free"
    }
}

/// How far ahead an offer may hold a slot.
pub const MAX_HOLD: Duration = Duration::days(14);

/// Books the first of `bookings` (cheapest first) that can still be made,
/// each tried in its own transaction; with `key`, a retry returns the first
/// call's appointment. `None` when none could be booked, with the reasons.
pub async fn book_first(
    db: &DatabaseConnection,
    key: Option<&super::RequestKey>,
    bookings: Vec<Booking>,
) -> Result<Result<appointment::Model, Vec<String>>, ApiError> {
    let mut reasons = Vec::new();
    for booking in bookings {
        let id = Uuid::now_v7();
        let txn = db.begin().await?;
        if let Some(created) = super::claim(&txn, "BookBestSlot", key, id).await? {
            txn.rollback().await?;
            return Ok(Ok(super::appointments::get(db, created.id()).await?));
        }
        let slot_id = booking.slot_id;
        match book_in(&txn, id, booking).await {
            Ok(()) => {
                txn.commit().await.map_err(db_error)?;
                return Ok(Ok(super::appointments::get(db, id).await?));
            }
            Err(error) => {
                txn.rollback().await?;
                let Some(reason) = refusal(&error) else {
                    return Err(error);
                };
                reasons.push(format!("slot {slot_id}: {reason}"));
            }
        }
    }
    Ok(Err(reasons))
}

/// The appointment an earlier call with `key` made, if any; claims nothing
/// (the claim is rolled back), so a retry is answered before the referral's
/// state (booked by that very call) is checked.
pub async fn replayed(
    db: &DatabaseConnection,
    key: Option<&super::RequestKey>,
) -> Result<Option<appointment::Model>, ApiError> {
    if key.is_none() {
        return Ok(None);
    }
    let txn = db.begin().await?;
    let claimed = super::claim(&txn, "BookBestSlot", key, Uuid::now_v7()).await?;
    txn.rollback().await?;
    match claimed {
        Some(created) => Ok(Some(super::appointments::get(db, created.id()).await?)),
        None => Ok(None),
    }
}

/// A displaced referral's new place.
#[derive(Debug, Clone)]
pub struct PlannedMove {
    /// The displaced appointment.
    pub from: appointment::Model,
    pub slot_id: Uuid,
}

/// Applies moves in one transaction, each in a savepoint: a booked
/// appointment still booked in the slot it was displaced from is moved
/// (RescheduleAppointment's path), a cancelled one's
/// referral is booked anew (BookAppointment's path). Each result is the
/// appointment now holding the referral, or why the move failed.
pub async fn apply_moves(
    db: &DatabaseConnection,
    moves: &[PlannedMove],
) -> Result<Vec<Result<Uuid, String>>, ApiError> {
    let mut ordered: Vec<(usize, &PlannedMove)> = moves.iter().enumerate().collect();
    // Target slots in id order, as every booking path orders its slot locks.
    ordered.sort_by_key(|(_, m)| m.slot_id);
    let mut results = vec![Err(String::new()); moves.len()];
    let txn = begin_write(db).await?;
    for (i, planned) in ordered {
        let savepoint = txn.begin().await?;
        let outcome = if planned.from.status == AppointmentStatus::Booked.as_str() {
            // Only if still booked (the guarded state change) and still in
            // the slot it was displaced from.
            super::appointments::reschedule_in(
                &savepoint,
                planned.from.id,
                planned.slot_id,
                Some(planned.from.slot_id),
            )
            .await
            .map(|()| planned.from.id)
        } else {
            let id = Uuid::now_v7();
            let booking = Booking {
                slot_id: planned.slot_id,
                patient_id: planned.from.patient_id,
                referral_id: planned.from.referral_id,
                reason: planned.from.reason.clone(),
            };
            book_in(&savepoint, id, booking).await.map(|()| id)
        };
        results[i] = match outcome {
            Ok(id) => {
                savepoint.commit().await.map_err(db_error)?;
                Ok(id)
            }
            Err(error) => {
                savepoint.rollback().await.map_err(db_error)?;
                Err(refusal(&error).ok_or(error)?)
            }
        };
    }
    txn.commit().await.map_err(db_error)?;
    Ok(results)
}

/// Appointments to rebook: those of an absence still booked in its slots.
pub async fn displaced_by_absence(
    db: &impl ConnectionTrait,
    absence_id: Uuid,
) -> Result<Vec<appointment::Model>, ApiError> {
    let absence = super::entities::absence::Entity::find_by_id(absence_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("absence", absence_id.to_string()))?;
    Ok(super::diary::displaced(db, &absence)
        .await?
        .into_iter()
        .filter(|a| a.status == AppointmentStatus::Booked.as_str())
        .collect())
}
