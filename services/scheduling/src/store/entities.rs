//! The sea-orm entities of SchedulingService's tables, and how values that
//! are not plain columns are spelled in them. Instants that rules compare
//! (slot, shift, absence and appointment times) are whole seconds since the
//! Unix epoch in `*_at` columns: the same integer comparison on SQLite and
//! PostgreSQL, and exact in unique indexes.

/// A list stored between commas (",a,b,"), so `LIKE '%,a,%'` finds members.
pub(crate) fn join_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut joined = String::from(",");
    for item in items {
        joined.push_str(item);
        joined.push(',');
    }
    joined
}

fn split_list(stored: &str) -> impl Iterator<Item = &str> {
    stored.split(',').filter(|item| !item.is_empty())
}

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod staff {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "staff")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub role: String,
        pub grade: Option<String>,
        /// Each specialty between commas (",cardiology,ent,"), so a LIKE on
        /// ",x," finds exact members.
        pub specialties: String,
        /// Enquiry categories, stored like `specialties`.
        pub skills: String,
        pub duty_manager: bool,
        pub create_time: DateTimeUtc,
        /// Bumped to serialise changes to a clinician's diary.
        pub revision: i64,
    }

    no_relations!();

    impl Model {
        /// The specialties, in the order given.
        pub fn specialty_list(&self) -> Vec<String> {
            super::split_list(&self.specialties)
                .map(str::to_owned)
                .collect()
        }

        /// The enquiry categories answered, in the order given.
        pub fn skill_list(&self) -> Vec<crate::domain::Category> {
            skills(&self.skills)
        }
    }

    /// The enquiry categories of a stored `skills` column.
    pub fn skills(stored: &str) -> Vec<crate::domain::Category> {
        super::split_list(stored)
            .filter_map(crate::domain::Category::from_stored)
            .collect()
    }
}

pub mod location {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "locations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub address: String,
        pub create_time: DateTimeUtc,
    }

    no_relations!();
}

pub mod room {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rooms")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub location_id: Uuid,
        pub name: String,
        pub create_time: DateTimeUtc,
    }

    no_relations!();
}

pub mod duty_shift {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "duty_shifts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub staff_id: Uuid,
        pub start_at: i64,
        pub end_at: i64,
        pub create_time: DateTimeUtc,
    }

    no_relations!();
}

pub mod session_template {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "session_templates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub clinician_id: Uuid,
        pub specialty: String,
        pub location_id: Uuid,
        pub room_id: Option<Uuid>,
        pub weekday: i32,
        /// Local wall-clock "HH:MM".
        pub start_time: String,
        pub end_time: String,
        pub slot_minutes: i32,
        pub kind: String,
        pub mode: String,
        pub capacity: i32,
        pub valid_from: Date,
        pub valid_to: Option<Date>,
        pub create_time: DateTimeUtc,
    }

    no_relations!();
}

pub mod slot {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub clinician_id: Uuid,
        pub specialty: String,
        pub location_id: Uuid,
        pub room_id: Option<Uuid>,
        pub template_id: Option<Uuid>,
        /// Civil date in Europe/London.
        pub date: Date,
        pub start_at: i64,
        pub end_at: i64,
        pub kind: String,
        pub mode: String,
        pub capacity: i32,
        /// Places taken; 0 <= booked <= capacity (a CHECK constraint).
        pub booked: i32,
        /// The clinician is absent (busy-unavailable).
        pub unavailable: bool,
        pub create_time: DateTimeUtc,
        /// An offer's tentative hold: only this referral may book the slot
        /// until `held_until` (epoch seconds) has passed.
        pub held_for_referral: Option<Uuid>,
        pub held_until: Option<i64>,
    }

    no_relations!();
}

pub mod absence {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "absences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub clinician_id: Uuid,
        pub start_at: i64,
        pub end_at: i64,
        pub reason: String,
        pub note: String,
        pub create_time: DateTimeUtc,
    }

    no_relations!();
}

pub mod appointment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "appointments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub slot_id: Uuid,
        pub patient_id: Uuid,
        pub referral_id: Option<Uuid>,
        pub reason: String,
        pub status: String,
        pub clinician_id: Uuid,
        pub start_at: i64,
        pub end_at: i64,
        pub cancelled_by: Option<String>,
        pub cancellation_reason: Option<String>,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        pub revision: i64,
    }

    no_relations!();
}

/// One row per patient who ever booked: a write to it serialises that
/// patient's bookings, so two concurrent ones cannot both pass the overlap
/// check.
pub mod patient_lock {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "patient_booking_locks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub patient_id: Uuid,
        pub changes: i64,
    }

    no_relations!();
}

pub mod referral {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "referrals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub patient_id: Uuid,
        pub specialty: String,
        pub priority: String,
        pub clock_start: Date,
        pub kind: String,
        pub earliest: Option<Date>,
        /// JSON array of `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}`.
        pub unavailable: String,
        pub required_clinician: Option<Uuid>,
        pub preferred_clinician: Option<Uuid>,
        pub status: String,
        pub removal_reason: Option<String>,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        pub revision: i64,
        /// `nhs`, `self_pay` or `insurer`.
        pub funding_kind: String,
        pub insurer_name: Option<String>,
        pub policy_number: Option<String>,
        pub preauthorisation_code: Option<String>,
    }

    no_relations!();

    impl Model {
        /// Who pays for the care.
        pub fn funding(&self) -> crate::domain::referral::Funding {
            crate::domain::referral::Funding::from_stored(
                &self.funding_kind,
                self.insurer_name.as_deref(),
                self.policy_number.as_deref(),
                self.preauthorisation_code.as_deref(),
            )
        }

        /// The periods the patient is unavailable; `None` when the stored
        /// list cannot be read (never written so by medsec).
        pub fn unavailable_periods(&self) -> Option<Vec<crate::domain::referral::Period>> {
            super::periods::read(&self.unavailable)
        }
    }
}

/// The JSON of `referrals.unavailable`:
/// `[{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}, …]`.
pub(crate) mod periods {
    use chrono::NaiveDate;
    use serde::{Deserialize, Serialize};

    use crate::domain::referral::Period;

    #[derive(Serialize, Deserialize)]
    struct Stored {
        from: NaiveDate,
        to: NaiveDate,
    }

    pub(crate) fn write(periods: &[Period]) -> String {
        let stored: Vec<Stored> = periods
            .iter()
            .map(|p| Stored {
                from: p.from,
                to: p.to,
            })
            .collect();
        // Dates and a list of pairs always serialise.
        serde_json::to_string(&stored).unwrap_or_else(|_| "[]".to_owned())
    }

    pub(crate) fn read(json: &str) -> Option<Vec<Period>> {
        let stored = serde_json::from_str::<Vec<Stored>>(json).ok()?;
        Some(
            stored
                .into_iter()
                .map(|p| Period {
                    from: p.from,
                    to: p.to,
                })
                .collect(),
        )
    }
}

pub mod enquiry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "enquiries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub category: String,
        pub urgency: String,
        pub patient_id: Option<Uuid>,
        pub summary: String,
        pub assigned_staff_id: Uuid,
        pub routing_reason: String,
        pub status: String,
        pub notes: String,
        pub create_time: DateTimeUtc,
        pub resolve_time: Option<DateTimeUtc>,
    }

    no_relations!();
}

pub mod proposal {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "proposals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Empty when every specialty was optimised.
        pub specialty: String,
        pub horizon_start: Date,
        pub horizon_end: Date,
        pub status: String,
        pub optimal: bool,
        pub objective: i64,
        pub greedy_objective: i64,
        pub referrals: i32,
        pub slots: i32,
        pub allocated: i32,
        pub unallocated: i32,
        pub breaches: i32,
        pub greedy_breaches: i32,
        pub mean_wait_days: f64,
        pub max_wait_days: i32,
        pub solve_seconds: f64,
        pub run_seconds: f64,
        pub create_time: DateTimeUtc,
        pub commit_time: Option<DateTimeUtc>,
        pub booked: i32,
        pub not_booked: i32,
        /// Waiting referrals the run left out, and the first
        /// [`MAX_LEFT_OUT_LISTED`](crate::store::optimise::proposals::MAX_LEFT_OUT_LISTED)
        /// of them with why (JSON).
        pub referrals_left_out: i32,
        pub left_out: String,
    }

    no_relations!();
}

pub mod proposal_allocation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "proposal_allocations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub proposal_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub referral_id: Uuid,
        pub patient_id: Uuid,
        pub slot_id: Uuid,
        pub specialty: String,
        pub slot_date: Date,
        pub clinician_id: Uuid,
        pub wait_days: i32,
        pub breach: bool,
        pub preference_missed: bool,
        pub cost: i64,
        pub appointment_id: Option<Uuid>,
        pub not_booked_reason: Option<String>,
    }

    no_relations!();
}

/// SQLite's stand-in for PostgreSQL's advisory lock: one row per specialty
/// being optimised, with a lease so a crashed run cannot hold it for ever.
pub mod optimisation_lock {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "optimisation_locks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub specialty: String,
        pub holder: Uuid,
        pub expires_at: i64,
    }

    no_relations!();
}
