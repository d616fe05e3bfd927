//! NATS JetStream: the suite's one stream (`<prefix>.>`), and a durable pull
//! consumer per consuming service's reaction.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, stream};
use prost::Message as _;
use sea_orm::DatabaseConnection;
use tokio_stream::StreamExt as _;

use super::{Consumer, deliver, pb};
use crate::config::EventsSettings;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot reach NATS JetStream at {url}: {source}")]
    Nats {
        url: String,
        source: async_nats::Error,
    },
}

/// Connects to `url` and makes sure the suite's stream exists.
pub async fn connect(
    url: &str,
    settings: &EventsSettings,
) -> Result<jetstream::Context, StartError> {
    connect_to(url, settings)
        .await
        .map_err(|source| StartError::Nats {
            url: url.to_owned(),
            source,
        })
}

async fn connect_to(
    url: &str,
    settings: &EventsSettings,
) -> Result<jetstream::Context, async_nats::Error> {
    let client = async_nats::ConnectOptions::new()
        .name("medsec")
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await?;
    let jetstream = jetstream::new(client);
    jetstream
        .get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            duplicate_window: Duration::from_secs(settings.duplicate_window_secs.max(1)),
            max_age: settings.retention(),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    Ok(jetstream)
}

/// Feeds `consumer` from its durable JetStream consumer until the task is
/// dropped; reconnects after a failure.
pub(super) async fn consume(
    jetstream: jetstream::Context,
    db: DatabaseConnection,
    consumer: Arc<dyn Consumer>,
    settings: EventsSettings,
) {
    loop {
        if let Err(error) = consume_once(&jetstream, &db, consumer.as_ref(), &settings).await {
            tracing::warn!(consumer = consumer.name(), %error, "event consumer stopped; restarting");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn consume_once(
    jetstream: &jetstream::Context,
    db: &DatabaseConnection,
    consumer: &dyn Consumer,
    settings: &EventsSettings,
) -> Result<(), async_nats::Error> {
    let stream = jetstream.get_stream(&settings.stream).await?;
    let pull = stream
        .get_or_create_consumer(
            consumer.name(),
            pull::Config {
                durable_name: Some(consumer.name().to_owned()),
                description: Some(format!(
                    "medsec {} ({})",
                    consumer.name(),
                    consumer.filter()
                )),
                filter_subject: settings.subject_of(consumer.filter()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(settings.ack_wait_secs.max(1)),
                ..Default::default()
            },
        )
        .await?;
    let mut messages = pull.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let envelope = match pb::Envelope::decode(message.payload.clone()) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(consumer = consumer.name(), %error, "undecodable event dropped");
                message.ack_with(AckKind::Term).await?;
                continue;
            }
        };
        match deliver(db, consumer, &envelope).await {
            Ok(_) => message.ack().await?,
            Err(error) => {
                let attempts = message.info().map(|info| info.delivered).unwrap_or(1);
                let wait = settings.backoff(u32::try_from(attempts.max(1) - 1).unwrap_or(20));
                tracing::warn!(consumer = consumer.name(), event = %envelope.id, %error, ?wait, "event effect failed; redelivering");
                message.ack_with(AckKind::Nak(Some(wait))).await?;
            }
        }
    }
    Ok(())
}
