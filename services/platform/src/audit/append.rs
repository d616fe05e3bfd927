//! Appending events to their chains, inside the caller's transaction.
//!
//! Each chain's head row is locked before its events take their places:
//! one upsert per batch of chains (`INSERT … ON CONFLICT DO UPDATE …
//! RETURNING`) makes a missing head and locks every head, in chain order so
//! that two transactions touching the same chains cannot deadlock; on
//! PostgreSQL the row locks are held to commit, and SQLite's write lock,
//! taken by `begin_write`, already serialises. Then the events are inserted
//! and the heads moved on: three statements per call (more only for calls
//! touching many chains, [`HEAD_CHUNK`]).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait as _, ConnectionTrait, DbErr, EntityTrait as _, IntoActiveModel as _,
};
use uuid::Uuid;

use super::Outcome;
use super::chain::{GENESIS, chain_of, trail_time};
use super::entities::{event, head};
use crate::db::rows_per_statement;

/// Chains locked or moved on per statement, and events inserted per
/// statement: each statement stays under [`crate::db::STATEMENT_BYTES`] (a head is
/// about 160 bytes, an event 320).
const HEAD_CHUNK: usize = rows_per_statement(160);
const EVENT_CHUNK: usize = rows_per_statement(320);

/// One event to append, before it has a place in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Uuid,
    pub time: DateTime<Utc>,
    pub service: String,
    pub method: String,
    pub subject: String,
    pub roles: String,
    pub purpose: String,
    pub reason: Option<String>,
    pub outcome: Outcome,
    pub resource: String,
    pub patient_id: Option<Uuid>,
    pub filter_hash: Option<String>,
    pub trace_id: String,
}

impl Event {
    /// The chain this event joins.
    pub fn chain(&self) -> String {
        chain_of(&self.service, &self.method, self.patient_id, self.time)
    }
}

/// Appends `events` to their chains in `conn` (a transaction that commits
/// them with the access they record, or a migration's). Events of one chain
/// keep the order given.
pub async fn append(conn: &impl ConnectionTrait, events: Vec<Event>) -> Result<(), DbErr> {
    let mut chains: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for mut event in events {
        event.time = trail_time(event.time);
        chains.entry(event.chain()).or_default().push(event);
    }
    if chains.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = chains.keys().map(String::as_str).collect();
    let mut heads = HashMap::with_capacity(names.len());
    for chunk in names.chunks(HEAD_CHUNK) {
        heads.extend(lock_heads(conn, chunk).await?);
    }

    let mut rows = Vec::new();
    let mut moved = Vec::with_capacity(chains.len());
    for (chain, events) in chains {
        let (mut seq, mut prev) = heads
            .remove(&chain)
            .ok_or_else(|| DbErr::Custom(format!("audit chain {chain} has no head")))?;
        for event in events {
            seq += 1;
            let row = event::Model {
                id: event.id,
                chain: chain.clone(),
                seq,
                prev_hash: prev,
                hash: String::new(),
                time: event.time,
                service: event.service,
                method: event.method,
                subject: event.subject,
                roles: event.roles,
                purpose: event.purpose,
                reason: event.reason,
                outcome: event.outcome.as_str().to_owned(),
                resource: event.resource,
                patient_id: event.patient_id,
                filter_hash: event.filter_hash,
                trace_id: event.trace_id,
            };
            let hash = row.fields().hash();
            prev = hash.clone();
            rows.push(event::Model { hash, ..row });
        }
        moved.push((chain, seq, prev));
    }

    for chunk in rows.chunks(EVENT_CHUNK) {
        event::Entity::insert_many(
            chunk
                .iter()
                .map(|row| row.clone().into_active_model().reset_all()),
        )
        .exec_without_returning(conn)
        .await?;
    }
    for chunk in moved.chunks(HEAD_CHUNK) {
        move_heads(conn, chunk).await?;
    }
    Ok(())
}

/// Makes the heads of `chains` (sorted) that are missing and locks them
/// all, answering each chain's last seq and hash.
async fn lock_heads(
    conn: &impl ConnectionTrait,
    chains: &[&str],
) -> Result<HashMap<String, (i64, String)>, DbErr> {
    use head::Column;
    let mut upsert = Query::insert();
    upsert
        .into_table(head::Entity)
        .columns([Column::Chain, Column::Seq, Column::Hash]);
    for chain in chains {
        upsert
            .values([(*chain).into(), 0_i64.into(), GENESIS.into()])
            .map_err(|error| DbErr::Custom(error.to_string()))?;
    }
    // A no-op update of an existing head: it locks the row and returns it.
    upsert
        .on_conflict(
            OnConflict::column(Column::Chain)
                .value(Column::Seq, Expr::col((head::Entity, Column::Seq)))
                .to_owned(),
        )
        .returning(Query::returning().columns([Column::Chain, Column::Seq, Column::Hash]));
    let rows = conn.query_all(&upsert).await?;
    rows.into_iter()
        .map(|row| {
            let chain: String = row.try_get("", "chain")?;
            let seq: i64 = row.try_get("", "seq")?;
            let hash: String = row.try_get("", "hash")?;
            Ok((chain, (seq, hash)))
        })
        .collect()
}

/// Moves each chain's head to its new last event.
async fn move_heads(
    conn: &impl ConnectionTrait,
    heads: &[(String, i64, String)],
) -> Result<(), DbErr> {
    use head::Column;
    let mut upsert = Query::insert();
    upsert
        .into_table(head::Entity)
        .columns([Column::Chain, Column::Seq, Column::Hash]);
    for (chain, seq, hash) in heads {
        upsert
            .values([chain.clone().into(), (*seq).into(), hash.clone().into()])
            .map_err(|error| DbErr::Custom(error.to_string()))?;
    }
    upsert.on_conflict(
        OnConflict::column(Column::Chain)
            .update_columns([Column::Seq, Column::Hash])
            .to_owned(),
    );
    conn.execute(&upsert).await?;
    Ok(())
}
