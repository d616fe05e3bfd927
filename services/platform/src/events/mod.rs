//! Events: what changed in one service, delivered reliably to the others
//! and to hospital IT (contract: `medsec.events.v1`, docs/EVENTS.md).
//!
//! - **Outbox** ([`emit`]): a service writes its events to `event_outbox`
//!   in the same transaction as the change that raised them, so an event
//!   exists if and only if its change committed.
//! - **Relay** ([`relay`]): every process relays its own services' outbox
//!   rows — claimed for a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
//!   write lock on SQLite), one subject's rows in the order they were raised
//!   — to NATS JetStream when `events.nats_url` is set, else to the
//!   consumers of this process; then numbers them (`position`, without gaps)
//!   and marks them relayed. A failed delivery is retried with backoff.
//! - **Consumers** ([`Consumer`], [`deliver`]): each effect runs in one
//!   transaction with its row in `event_inbox` keyed by event id, so
//!   at-least-once delivery has exactly-once effects.
//! - **Watchers** ([`watch`]): `WatchEvents` streams relayed events by
//!   position, resumable after a dropped stream.
//! - **Retention** ([`prune`]): relayed events and inbox rows are pruned
//!   after `events.retention_hours`.

mod consumer;
pub mod entities;
pub mod migration;
pub mod nats;
mod outbox;
pub mod prune;
pub mod relay;
mod runtime;
mod subject;
mod trace;
pub mod watch;

pub use consumer::{Consumer, Delivered, deliver};
pub use medsec_proto::events::v1 as pb;
pub use outbox::{Event, emit, type_of};
pub use relay::{Relay, Transport};
pub use runtime::{EventRuntime, StartError};
pub use subject::matches;
pub use watch::{Closer, EventsApi, POLICY, SERVICE_NAME};

use sea_orm::{DatabaseConnection, DbErr};

/// Applies the events' pending migrations (idempotent: every service runs
/// it before its own).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    crate::db::migrate::<migration::Migrator>(db).await
}

/// Now, in the whole milliseconds the outbox's times are kept in.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
