//! The relay: takes this process's services' outbox rows, delivers them
//! (to NATS JetStream, or to this process's consumers), then numbers them
//! and marks them relayed.
//!
//! Every replica runs one safely. A round claims rows for a lease in a
//! short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas
//! take different rows; SQLite's write lock serialises claims), delivers
//! them outside any transaction, and marks them in another. A row is
//! claimable only when no earlier row of its subject is still unrelayed,
//! so one subject's events go out in the order they were raised, across
//! replicas and retries. A relay that dies between delivering and marking
//! leaves its rows to be claimed again when the lease lapses; they are
//! delivered again with the same id, which JetStream and the consumers'
//! inboxes drop.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prost::Message as _;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use tokio::sync::Notify;
use tracing::Instrument as _;
use uuid::Uuid;

use super::outbox::WRITTEN;
use super::{Consumer, deliver, now_ms, pb, trace};
use crate::config::EventsSettings;
use crate::db::{begin_write, in_turn};

/// Wakes watchers when events are relayed in this process.
pub(super) static RELAYED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Where relayed events go.
#[derive(Clone)]
pub enum Transport {
    /// This process's consumers, each event delivered to every consumer
    /// whose filter takes it (the embedded default).
    InProcess(Arc<[Arc<dyn Consumer>]>),
    /// NATS JetStream: published with the event id as the message id.
    Nats(Box<async_nats::jetstream::Context>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InProcess(consumers) => f
                .debug_tuple("InProcess")
                .field(&consumers.iter().map(|c| c.name()).collect::<Vec<_>>())
                .finish(),
            Self::Nats(_) => f.write_str("Nats"),
        }
    }
}

/// An outbox row claimed by a relay.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub id: Uuid,
    pub kind: String,
    pub subject: String,
    pub envelope: Vec<u8>,
    pub attempts: i32,
}

/// How often the relay measures the outbox for the dashboards.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// One process's relay of its services' events.
#[derive(Debug, Clone)]
pub struct Relay {
    db: DatabaseConnection,
    /// This relay's claims are made in its name.
    id: Uuid,
    /// The services whose rows it relays (`records`, …).
    sources: Vec<String>,
    settings: EventsSettings,
    transport: Transport,
}

impl Relay {
    pub fn new(
        db: DatabaseConnection,
        sources: Vec<String>,
        settings: EventsSettings,
        transport: Transport,
    ) -> Self {
        Self {
            db,
            id: Uuid::now_v7(),
            sources,
            settings,
            transport,
        }
    }

    /// Relays until the task is dropped: a round whenever an event is
    /// written in this process, and every `events.poll_millis` for those
    /// written by others (and retries come due).
    pub async fn run(self) {
        let mut sampled: Option<std::time::Instant> = None;
        loop {
            if sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
                sampled = Some(std::time::Instant::now());
                if let Err(error) = self.sample().await {
                    tracing::debug!(%error, "cannot measure the outbox");
                }
            }
            match self.round().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(error) => tracing::warn!(%error, "event relay round failed; retrying"),
            }
            tokio::select! {
                () = WRITTEN.notified() => {
                    // Let the writer's transaction commit first.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                () = tokio::time::sleep(self.settings.poll()) => {}
            }
        }
    }

    /// Measures the outbox for the dashboards: how many events wait to be
    /// relayed and how long the oldest has waited.
    async fn sample(&self) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT COUNT(*) AS pending, MIN(created_ms) AS oldest \
                 FROM event_outbox WHERE position IS NULL",
            ))
            .await?;
        let (pending, oldest) = match row {
            Some(row) => (
                row.try_get::<i64>("", "pending")?,
                row.try_get::<Option<i64>>("", "oldest")?,
            ),
            None => (0, None),
        };
        let lag_ms = oldest.map_or(0, |oldest| now_ms().saturating_sub(oldest).max(0));
        crate::telemetry::metrics::outbox(
            u64::try_from(pending).unwrap_or(0),
            lag_ms as f64 / 1000.0,
        );
        Ok(())
    }

    /// Claims, delivers and marks one batch; the rows claimed.
    pub async fn round(&self) -> Result<usize, DbErr> {
        let claimed = self.claim().await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let outcomes = self.publish(&claimed).await;
        self.mark(&claimed, &outcomes).await?;
        Ok(claimed.len())
    }

    /// Claims up to `events.batch` deliverable rows for the lease, oldest
    /// first.
    pub async fn claim(&self) -> Result<Vec<Claimed>, DbErr> {
        let backend = self.db.get_database_backend();
        let now = now_ms();
        // A read first, so an idle relay never takes SQLite's write lock.
        let due = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT 1 AS due FROM event_outbox WHERE position IS NULL \
                     AND next_attempt_ms <= {} LIMIT 1",
                    placeholder(backend, 1)
                ),
                [now.into()],
            ))
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let until = now.saturating_add(
            i64::try_from(self.settings.claim_lease().as_millis()).unwrap_or(i64::MAX),
        );
        let mut values: Vec<Value> = vec![self.id.into(), until.into(), now.into()];
        let first_source = values.len() + 1;
        let sources: Vec<String> = self
            .sources
            .iter()
            .enumerate()
            .map(|(i, _)| placeholder(backend, first_source + i))
            .collect();
        values.extend(
            self.sources
                .iter()
                .map(|source| Value::from(source.clone())),
        );
        values.push(
            i64::try_from(self.settings.batch.max(1))
                .unwrap_or(1000)
                .into(),
        );
        let limit = placeholder(backend, values.len());
        let lock = if backend == DbBackend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let (p1, p2, p3) = (
            placeholder(backend, 1),
            placeholder(backend, 2),
            placeholder(backend, 3),
        );
        let sql = format!(
            "UPDATE event_outbox SET claimed_by = {p1}, claimed_until_ms = {p2} \
             WHERE seq IN (SELECT o.seq FROM event_outbox o \
             WHERE o.position IS NULL AND o.source IN ({sources}) \
             AND o.next_attempt_ms <= {p3} \
             AND (o.claimed_until_ms IS NULL OR o.claimed_until_ms < {p3}) \
             AND NOT EXISTS (SELECT 1 FROM event_outbox e WHERE e.subject = o.subject \
             AND e.position IS NULL AND e.seq < o.seq) \
             ORDER BY o.seq LIMIT {limit}{lock}) \
             RETURNING seq, id, kind, subject, envelope, attempts",
            sources = sources.join(", "),
        );
        let txn = begin_write(&self.db).await?;
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        txn.commit().await?;
        let mut claimed = rows
            .into_iter()
            .map(|row| {
                Ok(Claimed {
                    seq: row.try_get("", "seq")?,
                    id: row.try_get("", "id")?,
                    kind: row.try_get("", "kind")?,
                    subject: row.try_get("", "subject")?,
                    envelope: row.try_get("", "envelope")?,
                    attempts: row.try_get("", "attempts")?,
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        claimed.sort_by_key(|row| row.seq);
        Ok(claimed)
    }

    /// Delivers `claimed` in order; what became of each. After a failure,
    /// later rows of the same subject are not tried.
    pub async fn publish(&self, claimed: &[Claimed]) -> Vec<Result<(), String>> {
        let mut failed_subjects = std::collections::HashSet::new();
        let mut outcomes = Vec::with_capacity(claimed.len());
        match &self.transport {
            Transport::InProcess(consumers) => {
                for row in claimed {
                    if failed_subjects.contains(&row.subject) {
                        outcomes.push(Err("an earlier event of its subject failed".to_owned()));
                        continue;
                    }
                    let outcome = self.deliver_here(consumers, row).await;
                    if outcome.is_err() {
                        failed_subjects.insert(row.subject.clone());
                    }
                    outcomes.push(outcome);
                }
            }
            Transport::Nats(jetstream) => {
                // Publish the batch, then wait for JetStream's acks: one
                // connection keeps the order sent.
                let mut pending = Vec::with_capacity(claimed.len());
                for row in claimed {
                    let span = publish_span(row);
                    let subject = self.settings.subject_of(&row.kind);
                    let message = async_nats::jetstream::message::PublishMessage::build()
                        .payload(row.envelope.clone().into())
                        .message_id(row.id.to_string());
                    let sent = jetstream
                        .send_publish(subject, message)
                        .instrument(span.clone())
                        .await;
                    pending.push((span, sent));
                }
                for ((span, sent), row) in pending.into_iter().zip(claimed) {
                    let outcome = match sent {
                        Ok(ack) => match ack.into_future().instrument(span).await {
                            Ok(_) => Ok(()),
                            Err(error) => Err(format!("JetStream did not acknowledge: {error}")),
                        },
                        Err(error) => Err(format!("cannot publish to JetStream: {error}")),
                    };
                    let outcome = if failed_subjects.contains(&row.subject) {
                        Err("an earlier event of its subject failed".to_owned())
                    } else {
                        outcome
                    };
                    if outcome.is_err() {
                        failed_subjects.insert(row.subject.clone());
                    }
                    outcomes.push(outcome);
                }
            }
        }
        outcomes
    }

    async fn deliver_here(
        &self,
        consumers: &[Arc<dyn Consumer>],
        row: &Claimed,
    ) -> Result<(), String> {
        let span = publish_span(row);
        async {
            let envelope = pb::Envelope::decode(row.envelope.as_slice())
                .map_err(|error| format!("undecodable envelope: {error}"))?;
            trace::continue_in(&tracing::Span::current(), &envelope);
            for consumer in consumers {
                deliver(&self.db, consumer.as_ref(), &envelope)
                    .await
                    .map_err(|error| format!("{}: {error}", consumer.name()))?;
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Numbers the delivered rows in `claimed` (after every position given
    /// so far, in claim order) and marks them relayed; puts failed ones back
    /// with a backoff. One transaction, taking its turn for positions so
    /// they are handed out in commit order: a watcher never sees a later
    /// position before an earlier one.
    pub async fn mark(
        &self,
        claimed: &[Claimed],
        outcomes: &[Result<(), String>],
    ) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let now = now_ms();
        let txn = begin_write(&self.db).await?;
        let delivered: Vec<i64> = claimed
            .iter()
            .zip(outcomes)
            .filter(|(_, outcome)| outcome.is_ok())
            .map(|(row, _)| row.seq)
            .collect();
        if !delivered.is_empty() {
            in_turn(&txn, "events/position").await?;
            let still = unrelayed(&txn, backend, &delivered).await?;
            let last: Option<i64> = txn
                .query_one_raw(Statement::from_string(
                    backend,
                    "SELECT MAX(position) AS last FROM event_outbox",
                ))
                .await?
                .map(|row| row.try_get::<Option<i64>>("", "last"))
                .transpose()?
                .flatten();
            let mut position = last.unwrap_or(0);
            for seq in still {
                position += 1;
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE event_outbox SET position = {}, relayed_ms = {}, \
                         claimed_by = NULL, claimed_until_ms = NULL, last_error = NULL \
                         WHERE seq = {} AND position IS NULL",
                        placeholder(backend, 1),
                        placeholder(backend, 2),
                        placeholder(backend, 3),
                    ),
                    [position.into(), now.into(), seq.into()],
                ))
                .await?;
            }
        }
        for (row, outcome) in claimed.iter().zip(outcomes) {
            let Err(error) = outcome else { continue };
            let attempts = u32::try_from(row.attempts).unwrap_or(0);
            let wait = self.settings.backoff(attempts);
            let next = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
            tracing::warn!(event = %row.id, r#type = %row.kind, attempts = attempts + 1, ?wait, %error, "event delivery failed; will retry");
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE event_outbox SET attempts = attempts + 1, next_attempt_ms = {}, \
                     last_error = {}, claimed_by = NULL, claimed_until_ms = NULL \
                     WHERE seq = {} AND position IS NULL",
                    placeholder(backend, 1),
                    placeholder(backend, 2),
                    placeholder(backend, 3),
                ),
                [next.into(), error.clone().into(), row.seq.into()],
            ))
            .await?;
        }
        txn.commit().await?;
        if !delivered.is_empty() {
            RELAYED.notify_waiters();
        }
        Ok(())
    }
}

/// The rows of `seqs` not yet relayed (by another relay whose claim
/// outlived ours), in order.
async fn unrelayed(
    txn: &crate::db::WriteTransaction,
    backend: DbBackend,
    seqs: &[i64],
) -> Result<Vec<i64>, DbErr> {
    let list: Vec<String> = (1..=seqs.len()).map(|i| placeholder(backend, i)).collect();
    let sql = format!(
        "SELECT seq FROM event_outbox WHERE seq IN ({}) AND position IS NULL ORDER BY seq",
        list.join(", ")
    );
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            seqs.iter().map(|seq| Value::from(*seq)),
        ))
        .await?;
    rows.into_iter()
        .map(|row| row.try_get::<i64>("", "seq"))
        .collect()
}

/// The span of one event's publish, child of the call that raised it.
fn publish_span(row: &Claimed) -> tracing::Span {
    let span = tracing::info_span!(
        "publish",
        otel.name = %format_args!("{} publish", row.kind),
        otel.kind = "producer",
        messaging.system = "medsec",
        messaging.operation = "publish",
        messaging.destination.name = %row.kind,
        messaging.message.id = %row.id,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    if let Ok(envelope) = pb::Envelope::decode(row.envelope.as_slice()) {
        trace::continue_in(&span, &envelope);
    }
    crate::telemetry::record_ids(&span);
    span
}

/// Bind parameter `n` (from 1) in `backend`'s syntax.
pub(super) fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}
