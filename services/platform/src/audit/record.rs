//! The ways store code records accesses: in the transaction of the access
//! ([`record`], [`recorded`]), around a unit of work that reports what it
//! touched ([`audited`], [`audited_one`], [`create`]); and the refused or
//! failed calls the authorisation layer records in a transaction of their
//! own ([`record_call`]).

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use uuid::Uuid;

use super::append::{Event, append};
use super::{Access, Actor, Audited, Outcome};
use crate::db;
use crate::error::ApiError;
use crate::idempotency::{Claimed, IdempotencyKeys, RequestKey};
use crate::pagination::PageRequest;

/// Appends one event per access, by `actor`, with outcome `ok`. Call inside
/// the transaction of the access, so the event exists exactly when the
/// access did.
pub async fn record(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    accesses: impl IntoIterator<Item = Access>,
) -> Result<(), ApiError> {
    let events = events(actor, Outcome::Ok, accesses);
    append(conn, events).await?;
    Ok(())
}

/// Records the access to `value` and hands it back: the tail of a store
/// function whose transaction touched one record.
pub async fn recorded<T: Audited>(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    value: T,
) -> Result<T, ApiError> {
    record(conn, actor, [value.access()]).await?;
    Ok(value)
}

/// Runs `work` in one write transaction and records in it the accesses it
/// reports: an access is recorded exactly when it happened, and a failed
/// one records nothing (the authorisation layer records the failure).
pub async fn audited<T, A>(
    db: &DatabaseConnection,
    actor: &Actor,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<(T, A), ApiError>,
) -> Result<T, ApiError>
where
    A: IntoIterator<Item = Access>,
{
    db::write(db, async |txn| {
        let (value, accesses) = work(txn).await?;
        record(txn, actor, accesses).await?;
        Ok(value)
    })
    .await
}

/// As [`audited`], for work that touches the one record it answers with.
pub async fn audited_one<T: Audited>(
    db: &DatabaseConnection,
    actor: &Actor,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    db::write(db, async |txn| {
        let value = work(txn).await?;
        recorded(txn, actor, value).await
    })
    .await
}

/// An idempotent create in `scope` (the RPC) on `keys`: `new` creates the
/// record with the id it is given, or, when a first call with the same key
/// made it, `replay` finds that one. Either way the access is recorded in
/// the same transaction.
pub async fn create<T: Audited>(
    db: &DatabaseConnection,
    keys: &IdempotencyKeys,
    scope: &str,
    actor: &Actor,
    key: Option<&RequestKey>,
    replay: impl AsyncFnOnce(&DatabaseTransaction, Uuid) -> Result<T, ApiError>,
    new: impl AsyncFnOnce(&DatabaseTransaction, Uuid) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    keys.create(db, scope, key, async |txn, claimed| {
        let value = match claimed {
            Claimed::Replay(id) => replay(txn, id).await?,
            Claimed::New(id) => new(txn, id).await?,
        };
        recorded(txn, actor, value).await
    })
    .await
}

/// The accesses of a search (a list over records of many patients): one
/// per record of the page served (not the look-ahead row, which the caller
/// never sees), each with the hash of the search's filters. A search that
/// served nothing is recorded too, against `collection`: it told the
/// caller that nothing matched.
pub fn served<T: Audited>(page: &PageRequest, rows: &[T], collection: &str) -> Vec<Access> {
    let filter_hash = page.filter_hash();
    let served = &rows[..page.served(rows.len())];
    if served.is_empty() {
        return vec![Access::other(collection).filtered(filter_hash)];
    }
    served
        .iter()
        .map(|row| row.access().filtered(filter_hash))
        .collect()
}

/// Records, in a transaction of its own, a call on patient data that the
/// authorisation layer refused (`Denied`) or the handler answered with an
/// error (`Failed`): the call's own transaction, if any, was rolled back.
pub async fn record_call(
    db: &DatabaseConnection,
    actor: &Actor,
    outcome: Outcome,
    resource: &str,
) -> Result<(), DbErr> {
    let txn = db::begin_write(db).await?;
    append(&txn, events(actor, outcome, [Access::other(resource)])).await?;
    txn.commit().await
}

pub(super) fn events(
    actor: &Actor,
    outcome: Outcome,
    accesses: impl IntoIterator<Item = Access>,
) -> Vec<Event> {
    let time = Utc::now();
    accesses
        .into_iter()
        .map(|access| Event {
            id: Uuid::now_v7(),
            time,
            service: actor.service.clone(),
            method: actor.method.clone(),
            subject: actor.subject.clone(),
            roles: actor.roles.clone(),
            purpose: actor.purpose.clone(),
            reason: actor.reason.clone(),
            outcome,
            resource: access.resource,
            patient_id: access.patient_id,
            filter_hash: access.filter_hash,
            trace_id: actor.trace_id.clone(),
        })
        .collect()
}
