//! `WatchEvents`: the suite's relayed events, by position, for subscribers
//! that do not use NATS. Positions are handed out in commit order without
//! gaps ([`super::relay`]), so a subscriber that resumes after the last
//! position it handled misses nothing and sees nothing twice.

use std::pin::Pin;
use std::sync::Arc;

use prost::Message as _;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::pb;
use super::pb::event_service_server::{EventService, EventServiceServer};
use super::relay::{RELAYED, placeholder};
use crate::audit::{self, Access, Actor};
use crate::auth::Role;
use crate::auth::policy::{Rule, ServicePolicy};
use crate::config::EventsSettings;
use crate::error::ApiError;
use crate::request::Reader;

/// The gRPC name of the service.
pub const SERVICE_NAME: &str = "medsec.events.v1.EventService";

/// Who may watch: auditors, administrators (hospital IT's integration
/// accounts) and other services. Events name patients, so a purpose of use
/// is required and each watch is audited.
pub static POLICY: ServicePolicy = ServicePolicy {
    service: SERVICE_NAME,
    rules: &[Rule::patient(
        "WatchEvents",
        &[Role::Auditor, Role::Admin, Role::Service],
    )],
};

/// Events read from the database per query.
const PAGE: i64 = 500;
/// Most types one watch may filter on, and the longest type or prefix.
const MAX_TYPES: usize = 32;
const MAX_FILTER_CHARS: usize = 128;

/// EventService over the suite's database.
#[derive(Debug, Clone)]
pub struct EventsApi {
    db: DatabaseConnection,
    settings: EventsSettings,
    /// Becomes true when the server begins to shut down: every watch then
    /// ends, so draining does not wait for subscribers.
    closing: watch::Receiver<bool>,
}

/// Ends every watch of an [`EventsApi`] when the server shuts down.
#[derive(Debug, Clone)]
pub struct Closer(Arc<watch::Sender<bool>>);

impl Closer {
    /// Ends every watch now (with UNAVAILABLE: resume elsewhere or later
    /// from the last position handled), and every watch begun later.
    pub fn close(&self) {
        self.0.send_replace(true);
    }
}

impl EventsApi {
    pub fn new(db: DatabaseConnection, settings: &EventsSettings) -> (Self, Closer) {
        let (closer, closing) = watch::channel(false);
        let api = Self {
            db,
            settings: settings.clone(),
            closing,
        };
        (api, Closer(Arc::new(closer)))
    }

    /// The tonic server.
    pub fn service(self) -> EventServiceServer<Self> {
        EventServiceServer::new(self)
    }
}

/// What one watcher asked for.
#[derive(Debug, Clone)]
struct Watch {
    after: i64,
    types: Vec<String>,
    subject_prefix: String,
}

impl Watch {
    fn wants(&self, envelope: &pb::Envelope) -> bool {
        (self.types.is_empty() || self.types.contains(&envelope.r#type))
            && envelope.subject.starts_with(&self.subject_prefix)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Envelope, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventsApi {
    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        self.watch(request)
            .await
            .map(Response::new)
            .map_err(|error| error.into_status(DOMAIN))
    }
}

/// The `google.rpc.ErrorInfo` domain of the event service's errors.
const DOMAIN: &str = "events.medsec";

impl EventsApi {
    async fn watch(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<EventStream, ApiError> {
        let actor = Actor::of(&request);
        let watch = read(request.get_ref())?;
        self.check_kept(watch.after).await?;
        let txn = crate::db::begin_write(&self.db)
            .await
            .map_err(ApiError::from)?;
        audit::record(&*txn, &actor, [Access::other("events")]).await?;
        txn.commit().await?;

        let (sender, receiver) = mpsc::channel(64);
        let db = self.db.clone();
        let poll = self.settings.poll();
        let closing = self.closing.clone();
        tokio::spawn(async move { stream(db, watch, poll, closing, sender).await });
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }
}

fn read(request: &pb::WatchEventsRequest) -> Result<Watch, ApiError> {
    let mut r = Reader::new();
    let after = i64::try_from(request.from_position).ok();
    if after.is_none() {
        r.add("from_position", "is beyond any position");
    }
    if r.at_most("types", &request.types, MAX_TYPES) {
        for (i, kind) in request.types.iter().enumerate() {
            if kind.chars().count() > MAX_FILTER_CHARS || !kind.starts_with("medsec.") {
                r.add(
                    format!("types[{i}]"),
                    "must be an event type such as medsec.scheduling.appointment.fulfilled",
                );
            }
        }
    }
    let subject_prefix = r
        .filter("subject_prefix", &request.subject_prefix, MAX_FILTER_CHARS)
        .unwrap_or_default();
    let after = r.finish(after)?;
    Ok(Watch {
        after,
        types: request.types.clone(),
        subject_prefix,
    })
}

impl EventsApi {
    /// A watch resuming after events that have been pruned would miss them:
    /// FAILED_PRECONDITION naming the oldest position kept.
    async fn check_kept(&self, after: i64) -> Result<(), ApiError> {
        if after == 0 {
            return Ok(());
        }
        let backend = self.db.get_database_backend();
        let oldest: Option<i64> = self
            .db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT MIN(position) AS oldest FROM event_outbox WHERE position IS NOT NULL",
            ))
            .await?
            .map(|row| row.try_get::<Option<i64>>("", "oldest"))
            .transpose()?
            .flatten();
        match oldest {
            Some(oldest) if after + 1 < oldest => Err(ApiError::precondition(
                crate::PreconditionKind::State,
                "events",
                format!(
                    "events after position {after} have been pruned; the oldest kept is \
                     {oldest}: resume from {} or later",
                    oldest - 1
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Sends the events after `watch.after`, then each new one, until the
/// watcher goes away.
async fn stream(
    db: DatabaseConnection,
    mut watch: Watch,
    poll: std::time::Duration,
    mut closing: watch::Receiver<bool>,
    sender: mpsc::Sender<Result<pb::Envelope, Status>>,
) {
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT position, envelope FROM event_outbox WHERE position > {} \
         ORDER BY position LIMIT {}",
        placeholder(backend, 1),
        placeholder(backend, 2)
    );
    loop {
        if *closing.borrow() {
            let _ = sender
                .send(Err(ApiError::Unavailable(
                    "the server is shutting down; watch again from the last position handled"
                        .to_owned(),
                )
                .into_status(DOMAIN)))
                .await;
            return;
        }
        // Registered before reading, so an event relayed meanwhile wakes us.
        let relayed = RELAYED.notified();
        let rows = match db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                sql.clone(),
                [watch.after.into(), PAGE.into()],
            ))
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                let _ = sender
                    .send(Err(ApiError::from(error).into_status(DOMAIN)))
                    .await;
                return;
            }
        };
        let full = i64::try_from(rows.len()).unwrap_or(0) == PAGE;
        for row in rows {
            let decoded = row
                .try_get::<i64>("", "position")
                .and_then(|position| Ok((position, row.try_get::<Vec<u8>>("", "envelope")?)));
            let Ok((position, bytes)) = decoded else {
                let _ = sender
                    .send(Err(
                        ApiError::internal("an event could not be read").into_status(DOMAIN)
                    ))
                    .await;
                return;
            };
            watch.after = position;
            let Ok(mut envelope) = pb::Envelope::decode(bytes.as_slice()) else {
                tracing::error!(position, "undecodable event skipped by a watcher");
                continue;
            };
            if !watch.wants(&envelope) {
                continue;
            }
            envelope.position = u64::try_from(position).unwrap_or_default();
            if sender.send(Ok(envelope)).await.is_err() {
                return;
            }
        }
        if full {
            continue;
        }
        tokio::select! {
            () = relayed => {}
            () = tokio::time::sleep(poll) => {}
            () = sender.closed() => return,
            _ = closing.changed() => {}
        }
    }
}
