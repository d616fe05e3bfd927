//! Model-v1 instances built from the tables: waiting referrals with the
//! dates their patients are already seen, and free slots with their
//! remaining places; and the specialties a run over every specialty covers.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_scheduler::model::{self as m, Instance};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
};
use uuid::Uuid;

use medsec_platform::time::{EARLIEST_CIVIL_DATE, LATEST_CIVIL_DATE};

use crate::domain::allocation::Horizon;
use crate::domain::appointment::HOLDING;
use crate::domain::referral::EARLIEST_CLOCK_START;
use crate::domain::{AppointmentStatus, Kind, Priority, ReferralStatus, london};
use crate::store::diary::not_held;
use crate::store::entities::{appointment, referral, slot};

/// What goes into an instance.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Only these specialties; `None`: every specialty.
    pub specialties: Option<Vec<String>>,
    pub horizon: Horizon,
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

impl Scope {
    /// Every waiting referral of `specialties` and every free slot of theirs
    /// on the horizon's dates; narrow it with the other fields.
    pub fn new(specialties: Vec<String>, horizon: Horizon) -> Self {
        Self {
            specialties: Some(specialties),
            horizon,
            referrals: None,
            exclude_referrals: Vec::new(),
            only_slot: None,
            exclude_slots: Vec::new(),
            exclude_appointments: Vec::new(),
        }
    }
}

/// An instance with the rows it was built from.
#[derive(Debug)]
pub struct Built {
    pub instance: Instance,
    pub slots: HashMap<Uuid, slot::Model>,
    pub referrals: HashMap<Uuid, referral::Model>,
    /// Referrals in scope that could not be scheduled, and why.
    pub left_out: Vec<LeftOut>,
}

/// A referral left out of a run because its stored record cannot be
/// scheduled (written before today's checks, or by hand), with why; the run
/// goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeftOut {
    pub referral_id: Uuid,
    pub reason: String,
}

/// The model of a stored referral with the dates its patient is busy, or why
/// it cannot be scheduled.
fn schedulable(
    row: &referral::Model,
    busy: Option<&BTreeSet<NaiveDate>>,
) -> Result<m::Referral, &'static str> {
    let priority = model_priority(&row.priority).ok_or("has an unknown priority")?;
    let kind = model_kind(&row.kind).ok_or("has an unknown kind")?;
    if !(EARLIEST_CLOCK_START..=LATEST_CIVIL_DATE).contains(&row.clock_start) {
        return Err("has a clock start before 1990-01-01 or after 2199-12-31");
    }
    if row
        .earliest
        .is_some_and(|earliest| !(EARLIEST_CIVIL_DATE..=LATEST_CIVIL_DATE).contains(&earliest))
    {
        return Err("has an earliest date before 1880 or after 2199");
    }
    let periods = row
        .unavailable_periods()
        .ok_or("has unavailable periods that cannot be read")?;
    if periods.iter().any(|p| p.from > p.to) {
        return Err("has an unavailable period that ends before it starts");
    }
    let mut unavailable: Vec<m::DateRange> = periods
        .into_iter()
        .map(|p| m::DateRange {
            from: p.from,
            to: p.to,
        })
        .collect();
    unavailable.extend(
        busy.into_iter()
            .flatten()
            .map(|d| m::DateRange { from: *d, to: *d }),
    );
    Ok(m::Referral {
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
    })
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
pub async fn build(db: &impl ConnectionTrait, scope: &Scope) -> Result<Built, ApiError> {
    let referral_rows = referral_rows(db, scope).await?;
    let slot_rows = slot_rows(db, scope).await?;
    let busy_dates = busy_dates(db, scope).await?;

    let mut referrals = Vec::with_capacity(referral_rows.len());
    let mut left_out = Vec::new();
    for row in &referral_rows {
        match schedulable(row, busy_dates.get(&row.patient_id)) {
            Ok(referral) => referrals.push(referral),
            Err(reason) => left_out.push(LeftOut {
                referral_id: row.id,
                reason: reason.to_owned(),
            }),
        }
    }
    if !left_out.is_empty() {
        tracing::warn!(
            left_out = left_out.len(),
            first = %left_out[0].referral_id,
            reason = left_out[0].reason,
            "waiting referrals left out of a run: their stored records cannot be scheduled"
        );
    }
    let mut slots = Vec::with_capacity(slot_rows.len());
    for row in &slot_rows {
        let Some(kind) = model_kind(&row.kind) else {
            tracing::warn!(slot_id = %row.id, kind = row.kind, "slot of an unknown kind left out of a run");
            continue;
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
                start: scope.horizon.start,
                end: scope.horizon.end,
            },
            weights: m::WeightOverrides::default(),
            slots,
            referrals,
        },
        slots: slot_rows.into_iter().map(|s| (s.id, s)).collect(),
        referrals: {
            let left: HashSet<Uuid> = left_out.iter().map(|out| out.referral_id).collect();
            referral_rows
                .into_iter()
                .filter(|row| !left.contains(&row.id))
                .map(|r| (r.id, r))
                .collect()
        },
        left_out,
    })
}

async fn referral_rows(
    db: &impl ConnectionTrait,
    scope: &Scope,
) -> Result<Vec<referral::Model>, ApiError> {
    let mut query = referral::Entity::find();
    query = match &scope.referrals {
        Some(ids) => query.filter(referral::Column::Id.is_in(ids.clone())),
        None => query.filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str())),
    };
    if let Some(specialties) = &scope.specialties {
        query = query.filter(referral::Column::Specialty.is_in(specialties.clone()));
    }
    if !scope.exclude_referrals.is_empty() {
        query = query.filter(referral::Column::Id.is_not_in(scope.exclude_referrals.clone()));
    }
    Ok(query.order_by_asc(referral::Column::Id).all(db).await?)
}

async fn slot_rows(db: &impl ConnectionTrait, scope: &Scope) -> Result<Vec<slot::Model>, ApiError> {
    let now = Utc::now().timestamp();
    let mut query = slot::Entity::find()
        .filter(slot::Column::Date.gte(scope.horizon.start))
        .filter(slot::Column::Date.lte(scope.horizon.end))
        .filter(slot::Column::Unavailable.eq(false))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)));
    // A slot held for a referral is that referral's to take: an instance of
    // just that referral (BookBestSlot) sees it; any other leaves it out.
    query = match scope.referrals.as_deref() {
        Some([only]) => query.filter(
            Condition::any()
                .add(not_held(now))
                .add(slot::Column::HeldForReferral.eq(*only)),
        ),
        _ => query.filter(not_held(now)),
    };
    if let Some(specialties) = &scope.specialties {
        query = query.filter(slot::Column::Specialty.is_in(specialties.clone()));
    }
    if let Some(id) = scope.only_slot {
        query = query.filter(slot::Column::Id.eq(id));
    }
    if !scope.exclude_slots.is_empty() {
        query = query.filter(slot::Column::Id.is_not_in(scope.exclude_slots.clone()));
    }
    Ok(query.order_by_asc(slot::Column::Id).all(db).await?)
}

/// The dates each patient already holds an appointment on within the
/// horizon (booked or arrived, those being moved left out).
async fn busy_dates(
    db: &impl ConnectionTrait,
    scope: &Scope,
) -> Result<HashMap<Uuid, BTreeSet<NaiveDate>>, ApiError> {
    // A day either side covers any UTC offset.
    let day_start = |date: NaiveDate| {
        london::start_of_day(date)
            .map(|t| t.timestamp())
            .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
    };
    let from = day_start(scope.horizon.start) - 86_400;
    let to = day_start(scope.horizon.end) + 2 * 86_400;
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
    Ok(busy_dates)
}

/// Specialties with waiting referrals or slots on the horizon's dates.
pub async fn specialties(
    db: &impl ConnectionTrait,
    horizon: Horizon,
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
            .filter(slot::Column::Date.gte(horizon.start))
            .filter(slot::Column::Date.lte(horizon.end))
            .into_tuple::<String>()
            .all(db)
            .await?,
    );
    Ok(names.into_iter().collect())
}
