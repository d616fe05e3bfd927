//! Group commit of the events of audited reads.
//!
//! A read that changes nothing still writes its audit event, and answers
//! only once that event is durable. Committing each read's event alone
//! costs a write transaction per read: on SQLite every audited read then
//! queues for the one write lock, on PostgreSQL each pays its own commit.
//! Instead, [`read`] runs the read in a read-only transaction and hands its
//! events to the journal of its database; the journal appends every event
//! handed in meanwhile in one write transaction and commits them together,
//! and only then does each read return its answer. A read whose events did
//! not commit answers with the error, never with the data: no access goes
//! unrecorded.
//!
//! There is no background task. The first read to find no commit under way
//! starts one (spawned, so a cancelled caller cannot cut it short) and the
//! commit goes on, batch after batch, for as long as reads keep arriving;
//! events handed in while one batch commits form the next. Under no load a
//! read waits for its own commit only; under load a batch holds everything
//! that arrived during the previous commit, up to [`MOST_PER_BATCH`] reads.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend};
use tokio::sync::oneshot;
use tracing::Instrument as _;

use super::append::{Event, append};
use super::record::events;
use super::{Access, Actor, Outcome};
use crate::db::{self, DbFault};
use crate::error::ApiError;

/// Reads whose events one commit holds at most: enough that a burst of
/// readers is served by a few commits, few enough that one commit stays
/// short (its statements are chunked in any case).
pub const MOST_PER_BATCH: usize = 1024;

/// Runs `work` in a read-only transaction and records the accesses it
/// reports, with outcome `ok`, before handing its value back: the value is
/// released only once its events are committed (with other reads' events,
/// in one transaction). For work that changes nothing; work that writes
/// records its accesses in its own transaction ([`super::audited`]).
pub async fn read<T, A>(
    db: &DatabaseConnection,
    actor: &Actor,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<(T, A), ApiError>,
) -> Result<T, ApiError>
where
    A: IntoIterator<Item = Access>,
{
    let txn = db::begin_read(db).await?;
    let (value, accesses) = work(&txn).await?;
    // Nothing was written: ending the read early frees its connection
    // while the events commit.
    txn.rollback().await?;
    journal(db)
        .commit(db, events(actor, Outcome::Ok, accesses))
        .await?;
    Ok(value)
}

/// As [`read`], for work that reads the one record it answers with.
pub async fn read_one<T: super::Audited>(
    db: &DatabaseConnection,
    actor: &Actor,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    read(db, actor, async |txn| {
        let value = work(txn).await?;
        let access = value.access();
        Ok((value, [access]))
    })
    .await
}

/// The events waiting for a commit, and whether one is under way.
#[derive(Default)]
struct Journal {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    committing: bool,
}

/// One read's events, and where to tell it they are committed.
struct Waiting {
    events: Vec<Event>,
    done: oneshot::Sender<Result<(), Fault>>,
}

/// Why a batch did not commit, as each of its reads answers it.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// A concurrent transaction won, twice: retry now.
    Conflict,
    /// The database was busy or unreachable: retry after a pause.
    Unavailable,
    /// Anything else: logged once, by the commit.
    Internal,
}

impl From<Fault> for ApiError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Conflict => Self::lost_race(),
            Fault::Unavailable => Self::Unavailable(
                "the audit trail cannot be written for the moment; retry".to_owned(),
            ),
            Fault::Internal => Self::internal("the audit trail could not be written"),
        }
    }
}

/// One journal per database, as the database's write turns are kept
/// ([`crate::db`]): keyed by the SQLite file or the PostgreSQL server,
/// database and user.
static JOURNALS: LazyLock<Mutex<HashMap<String, Arc<Journal>>>> = LazyLock::new(Default::default);

fn journal(db: &DatabaseConnection) -> Arc<Journal> {
    let key = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            format!("sqlite:{}", pool.connect_options().get_filename().display())
        }
        _ => {
            let pool = db.get_postgres_connection_pool();
            let options = pool.connect_options();
            format!(
                "postgres:{}:{}/{}@{}",
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or_default(),
                options.get_username()
            )
        }
    };
    JOURNALS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default()
        .clone()
}

impl Journal {
    /// Commits `events` with whatever else is waiting, and returns once
    /// they are durable (or could not be written).
    async fn commit(
        self: Arc<Self>,
        db: &DatabaseConnection,
        events: Vec<Event>,
    ) -> Result<(), ApiError> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push(Waiting { events, done });
            !std::mem::replace(&mut queue.committing, true)
        };
        if start {
            let db = db.clone();
            let span = tracing::info_span!("audit.group_commit");
            tokio::spawn(self.clone().commit_all(db).instrument(span));
        }
        match committed.await {
            Ok(result) => result.map_err(ApiError::from),
            // The commit task ended without answering: only a panic does.
            Err(_) => Err(ApiError::internal("the audit commit stopped")),
        }
    }

    /// Commits batch after batch until nothing is waiting.
    async fn commit_all(self: Arc<Self>, db: DatabaseConnection) {
        let _unstuck = Unstuck(&self);
        loop {
            let batch = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.committing = false;
                    return;
                }
                let take = queue.waiting.len().min(MOST_PER_BATCH);
                queue.waiting.drain(..take).collect::<Vec<_>>()
            };
            let events: Vec<Event> = batch
                .iter()
                .flat_map(|waiting| waiting.events.iter().cloned())
                .collect();
            let result = commit_batch(&db, events).await;
            tracing::debug!(
                reads = batch.len(),
                ok = result.is_ok(),
                "audit events committed"
            );
            for waiting in batch {
                // A reader that went away needs no answer.
                let _ = waiting.done.send(result);
            }
        }
    }
}

/// Should a commit task panic, lets the next read start another (instead of
/// every later read waiting for a commit that will never come), and fails
/// the reads still waiting (their senders dropped: `INTERNAL`).
struct Unstuck<'a>(&'a Journal);

impl Drop for Unstuck<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.clear();
            queue.committing = false;
        }
    }
}

/// Appends `events` in one write transaction, trying a lost race once more.
async fn commit_batch(db: &DatabaseConnection, events: Vec<Event>) -> Result<(), Fault> {
    let mut tries = 0;
    loop {
        tries += 1;
        let attempt = async {
            let txn = db::begin_write(db).await?;
            append(&*txn, events.clone()).await?;
            txn.commit().await
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(error) => match db::classify(&error) {
                DbFault::Conflict if tries < 2 => continue,
                DbFault::Conflict => {
                    tracing::info!(%error, "audit events not committed: readers told to retry");
                    return Err(Fault::Conflict);
                }
                DbFault::Unavailable => {
                    tracing::warn!(%error, "audit events not committed: readers told to retry");
                    return Err(Fault::Unavailable);
                }
                DbFault::Other => {
                    tracing::error!(%error, "audit events could not be written");
                    return Err(Fault::Internal);
                }
            },
        }
    }
}
