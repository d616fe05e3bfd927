//! Retention: relayed events and consumers' inbox rows older than
//! `events.retention_hours` are deleted, in batches. The latest relayed
//! event is always kept: positions continue from it, never reused.

use std::time::Duration;

use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbErr, Statement};

use super::now_ms;
use super::relay::placeholder;
use crate::config::EventsSettings;

/// Rows deleted per statement, so pruning never holds a lock for long.
const BATCH: i64 = 1000;

/// Prunes now and then at intervals (a 24th of the retention, between a
/// minute and an hour) for as long as the task runs.
pub(super) async fn run(db: DatabaseConnection, settings: EventsSettings) {
    let retention = settings.retention();
    let every = (retention / 24).clamp(Duration::from_secs(60), Duration::from_secs(3600));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match prune(&db, retention).await {
            Ok((0, 0)) => {}
            Ok((events, inbox)) => tracing::info!(events, inbox, "pruned events past retention"),
            Err(error) => tracing::warn!(%error, "could not prune events; will retry"),
        }
    }
}

/// Deletes relayed events and inbox rows older than `retention`; how many
/// of each.
pub async fn prune(db: &DatabaseConnection, retention: Duration) -> Result<(u64, u64), DbErr> {
    let cutoff = now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let events = delete_before(
        db,
        "DELETE FROM event_outbox WHERE seq IN (SELECT seq FROM event_outbox \
         WHERE relayed_ms < {cutoff} AND position < (SELECT MAX(position) FROM event_outbox) \
         ORDER BY relayed_ms LIMIT {limit})",
        cutoff,
    )
    .await?;
    let inbox = delete_before(
        db,
        "DELETE FROM event_inbox WHERE (consumer, event_id) IN (SELECT consumer, event_id \
         FROM event_inbox WHERE handled_ms < {cutoff} ORDER BY handled_ms LIMIT {limit})",
        cutoff,
    )
    .await?;
    Ok((events, inbox))
}

async fn delete_before(db: &DatabaseConnection, sql: &str, cutoff: i64) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = sql
        .replace("{cutoff}", &placeholder(backend, 1))
        .replace("{limit}", &placeholder(backend, 2));
    let mut total = 0;
    loop {
        let deleted = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql.clone(),
                [cutoff.into(), BATCH.into()],
            ))
            .await?
            .rows_affected();
        total += deleted;
        if deleted < BATCH.unsigned_abs() {
            return Ok(total);
        }
    }
}
