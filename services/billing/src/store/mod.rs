//! Billing's storage: sea-orm entities, migrations, and queries over any
//! connection or transaction. Every change that checks a precondition writes
//! first (a guarded UPDATE or an INSERT), so concurrent callers are ordered by
//! the database and SQLite never has to upgrade a read lock.

pub mod budgets;
pub mod charges;
mod counters;
pub mod entities;
pub mod invoices;
pub mod migration;
pub mod price_list;

pub use migration::Migrator;

use medsec_platform::idempotency::IdempotencyKeys;

/// Claimed `request_id`s of BillingService's idempotent RPCs.
pub const IDEMPOTENCY_KEYS: IdempotencyKeys = IdempotencyKeys::new("billing_idempotency_keys");

pub use medsec_platform::idempotency::RequestKey;

/// The id a page token resumes after.
pub(crate) fn page_after(
    page: &medsec_platform::pagination::PageRequest,
) -> Result<Option<uuid::Uuid>, medsec_platform::ApiError> {
    page.after
        .as_deref()
        .map(|after| {
            uuid::Uuid::parse_str(after).map_err(|_| {
                medsec_platform::ApiError::invalid("page_token", "is not a token this API issued")
            })
        })
        .transpose()
}
