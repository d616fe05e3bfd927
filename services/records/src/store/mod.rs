//! Storage of the patient's file: sea-orm entities, migrations, and queries
//! over any connection or transaction.

pub mod migration;
pub mod patient;
pub mod patients;

pub use migration::Migrator;

use medsec_platform::idempotency::IdempotencyKeys;

/// Claimed `request_id`s of RecordsService's Create RPCs.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys = IdempotencyKeys::new("records_idempotency_keys");
