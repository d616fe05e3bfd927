//! Acting on events exactly once: each effect commits with its event's row
//! in the consumer's inbox, so a redelivered event finds the row and does
//! nothing.

use sea_orm::sea_query::{Alias, OnConflict, Query};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DatabaseTransaction};
use tracing::Instrument as _;
use uuid::Uuid;

use super::{matches, now_ms, pb, trace};
use crate::db::{begin_write, savepoint};
use crate::error::ApiError;

/// A service's reaction to events of some types.
#[sea_orm::prelude::async_trait::async_trait]
pub trait Consumer: Send + Sync + std::fmt::Debug {
    /// Its durable name, unique in the suite: the key of its inbox rows and
    /// the name of its JetStream consumer, e.g. `billing-charges`.
    fn name(&self) -> &'static str;

    /// The event types it takes, as a NATS subject filter over types, e.g.
    /// `medsec.scheduling.appointment.>`. Events of other types that match
    /// are its to ignore.
    fn filter(&self) -> &'static str;

    /// Applies `event`'s effect in `txn`. An error the caller would get for
    /// bad input or a wrong state (the effect cannot apply: no price for the
    /// charge, say) drops the event with a warning, noted in the inbox; any
    /// other error rolls back and the event is delivered again later.
    async fn handle(&self, txn: &DatabaseTransaction, event: &pb::Envelope)
    -> Result<(), ApiError>;
}

/// What a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The effect committed.
    Done,
    /// The effect could not apply; the event is dropped, and the reason kept
    /// in the inbox.
    Refused(String),
    /// This consumer had already acted on the event.
    Duplicate,
    /// Not a type the consumer takes.
    Ignored,
}

/// Delivers `event` to `consumer` once: its effect and its inbox row in one
/// transaction, inside a span continuing the trace that raised the event.
/// An error means nothing committed and the event should come again.
pub async fn deliver(
    db: &DatabaseConnection,
    consumer: &dyn Consumer,
    event: &pb::Envelope,
) -> Result<Delivered, ApiError> {
    if !matches(consumer.filter(), &event.r#type) {
        return Ok(Delivered::Ignored);
    }
    let Ok(id) = Uuid::parse_str(&event.id) else {
        tracing::warn!(consumer = consumer.name(), id = %event.id, "event without a valid id dropped");
        return Ok(Delivered::Refused("the event has no valid id".to_owned()));
    };
    let span = tracing::info_span!(
        "consume",
        otel.name = %format_args!("{} process", event.r#type),
        otel.kind = "consumer",
        messaging.system = "medsec",
        messaging.operation = "process",
        messaging.destination.name = %event.r#type,
        messaging.message.id = %event.id,
        messaging.consumer.group.name = consumer.name(),
        outcome = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    trace::continue_in(&span, event);
    crate::telemetry::record_ids(&span);
    async move {
        let delivered = apply(db, consumer, event, id).await;
        let outcome = match &delivered {
            Ok(Delivered::Done) => "done",
            Ok(Delivered::Refused(_)) => "refused",
            Ok(Delivered::Duplicate) => "duplicate",
            Ok(Delivered::Ignored) => "ignored",
            Err(_) => "retry",
        };
        tracing::Span::current().record("outcome", outcome);
        delivered
    }
    .instrument(span)
    .await
}

async fn apply(
    db: &DatabaseConnection,
    consumer: &dyn Consumer,
    event: &pb::Envelope,
    id: Uuid,
) -> Result<Delivered, ApiError> {
    let txn = begin_write(db).await?;
    if !note(&txn, consumer.name(), id, &event.r#type, "done").await? {
        txn.rollback().await?;
        return Ok(Delivered::Duplicate);
    }
    let attempt = savepoint(&txn).await?;
    let delivered = match consumer.handle(&attempt, event).await {
        Ok(()) => {
            attempt.commit().await?;
            Delivered::Done
        }
        Err(error) if is_refusal(&error) => {
            attempt.rollback().await?;
            let reason = error.to_string();
            tracing::warn!(
                consumer = consumer.name(),
                event = %event.id,
                r#type = %event.r#type,
                %reason,
                "event refused: its effect cannot apply"
            );
            set_outcome(&txn, consumer.name(), id, &format!("refused: {reason}")).await?;
            Delivered::Refused(reason)
        }
        Err(error) => return Err(error),
    };
    txn.commit().await?;
    Ok(delivered)
}

/// Errors that say the effect can never apply, as opposed to a passing
/// fault worth another try.
fn is_refusal(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::InvalidArgument(_)
            | ApiError::NotFound { .. }
            | ApiError::AlreadyExists { .. }
            | ApiError::FailedPrecondition { .. }
            | ApiError::PermissionDenied(_)
    )
}

/// Writes the inbox row; false when it was already there.
async fn note(
    txn: &DatabaseTransaction,
    consumer: &str,
    id: Uuid,
    kind: &str,
    outcome: &str,
) -> Result<bool, ApiError> {
    let insert = Query::insert()
        .into_table(Alias::new("event_inbox"))
        .columns([
            Alias::new("consumer"),
            Alias::new("event_id"),
            Alias::new("kind"),
            Alias::new("handled_ms"),
            Alias::new("outcome"),
        ])
        .values_panic([
            consumer.into(),
            id.into(),
            kind.into(),
            now_ms().into(),
            outcome.into(),
        ])
        .on_conflict(
            OnConflict::columns([Alias::new("consumer"), Alias::new("event_id")])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    Ok(txn.execute(&insert).await?.rows_affected() == 1)
}

async fn set_outcome(
    txn: &DatabaseTransaction,
    consumer: &str,
    id: Uuid,
    outcome: &str,
) -> Result<(), ApiError> {
    use sea_orm::sea_query::{Expr, ExprTrait as _};
    let update = Query::update()
        .table(Alias::new("event_inbox"))
        .value(Alias::new("outcome"), outcome)
        .and_where(Expr::col(Alias::new("consumer")).eq(consumer))
        .and_where(Expr::col(Alias::new("event_id")).eq(id))
        .to_owned();
    txn.execute(&update).await?;
    Ok(())
}
