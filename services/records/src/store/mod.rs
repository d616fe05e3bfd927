//! Storage of the patient's file: the entities, the migrations, and queries
//! over any connection or transaction. Every access to a patient's data is
//! audited in the transaction of the access (see `audit`).

pub mod audit;
pub mod documents;
pub mod entities;
mod events;
pub mod forms;
pub mod history;
pub mod migration;
pub mod patients;
pub mod specimens;

pub use migration::Migrator;
/// The handle the API holds: every query goes through this module.
pub use sea_orm::DatabaseConnection;

use medsec_platform::idempotency::IdempotencyKeys;

/// Claimed `request_id`s of RecordsService's Create RPCs.
/// ListPatients pages in registration order, so patients' ids are minted in
/// commit order.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys =
    IdempotencyKeys::new("records_idempotency_keys").minting_in_order(&["CreatePatient"]);
