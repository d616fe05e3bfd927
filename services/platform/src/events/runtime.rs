//! What a serving process runs for events: its relay, its consumers' feeds
//! from NATS (when configured) and the pruner.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;

pub use super::nats::StartError;
use super::relay::{Relay, Transport};
use super::{Consumer, nats, prune};
use crate::config::EventsSettings;

/// The background tasks of events in one process; stopped when dropped.
#[derive(Debug, Default)]
pub struct EventRuntime {
    tasks: Vec<JoinHandle<()>>,
}

impl EventRuntime {
    /// Starts relaying the outbox rows of `sources` (the services served
    /// here) and feeding `consumers`: from NATS JetStream when
    /// `events.nats_url` is set, else in-process by the relay itself.
    pub async fn start(
        db: DatabaseConnection,
        settings: &EventsSettings,
        sources: Vec<String>,
        consumers: Vec<Arc<dyn Consumer>>,
    ) -> Result<Self, StartError> {
        let mut tasks = Vec::new();
        let transport = match &settings.nats_url {
            Some(url) => {
                let jetstream = nats::connect(url, settings).await?;
                for consumer in consumers {
                    tasks.push(tokio::spawn(nats::consume(
                        jetstream.clone(),
                        db.clone(),
                        consumer,
                        settings.clone(),
                    )));
                }
                tracing::info!(%url, stream = %settings.stream, "events go through NATS JetStream");
                Transport::Nats(Box::new(jetstream))
            }
            None => Transport::InProcess(consumers.into()),
        };
        if settings.relay {
            let relay = Relay::new(db.clone(), sources, settings.clone(), transport);
            tasks.push(tokio::spawn(relay.run()));
        }
        tasks.push(tokio::spawn(prune::run(db, settings.clone())));
        Ok(Self { tasks })
    }

    /// Stops every task.
    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for EventRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}
