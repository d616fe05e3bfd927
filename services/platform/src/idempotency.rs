//! Idempotency keys for Create RPCs (and the others a retry must not repeat).
//!
//! A create that carries a `request_id` claims the key in the same transaction
//! that creates the resource: [`IdempotencyKeys::create`] is the one way to do
//! it. A retry with the same key finds the claim and
//! answers with the resource the first call made; the same key with a
//! different request is refused. Claims race safely: the key is the primary
//! key, and `INSERT … ON CONFLICT DO NOTHING` makes a concurrent second claim
//! wait for the first transaction and then see its row.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, ColumnDef, Expr, ExprTrait as _, Index, IndexCreateStatement, OnConflict, Query, Table,
    TableCreateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;

/// Claims deleted per transaction by [`IdempotencyKeys::purge`].
pub const PURGE_BATCH: u64 = 1000;

/// Longest accepted `request_id`.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A service's table of claimed keys.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKeys {
    table: &'static str,
    /// Scopes whose new ids are minted in commit order (see
    /// [`IdempotencyKeys::minting_in_order`]).
    in_order: &'static [&'static str],
}

/// A client's idempotency key with the canonical bytes of the request it
/// guards.
#[derive(Debug, Clone)]
pub struct RequestKey {
    pub request_id: String,
    pub request: Vec<u8>,
}

impl RequestKey {
    /// The key of a Create request, or `None` when it carries no
    /// `request_id`. The request with its id blanked (by `blank_id`) is "the
    /// same request".
    pub fn of<M: prost::Message + Clone>(
        request_id: &str,
        request: &M,
        blank_id: impl FnOnce(&mut M),
    ) -> Option<Self> {
        if request_id.is_empty() {
            return None;
        }
        let mut canonical = request.clone();
        blank_id(&mut canonical);
        Some(Self {
            request_id: request_id.to_owned(),
            request: canonical.encode_to_vec(),
        })
    }
}

/// What claiming the key of a create found, with the id of the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// No key, or a new one: create the resource with this id.
    New(Uuid),
    /// The same request came before and created the resource with this id:
    /// answer with it and create nothing.
    Replay(Uuid),
}

impl Claimed {
    /// The id of the resource, new or replayed.
    pub fn id(self) -> Uuid {
        match self {
            Self::New(id) | Self::Replay(id) => id,
        }
    }
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new and now belongs to this request: go on and create.
    New,
    /// The same request was made before and created this resource.
    Replay { resource_id: String },
}

impl IdempotencyKeys {
    pub const fn new(table: &'static str) -> Self {
        Self {
            table,
            in_order: &[],
        }
    }

    /// Mints the ids of the creates in `scopes` one transaction at a time,
    /// so that ids (UUIDv7, time-ordered) follow commit order: a list paged
    /// by id then never has a row appear behind a page already served.
    /// Creates in these scopes queue behind one another on PostgreSQL; on
    /// SQLite every write already does.
    pub const fn minting_in_order(self, scopes: &'static [&'static str]) -> Self {
        Self {
            table: self.table,
            in_order: scopes,
        }
    }

    /// The migration statement creating the table.
    pub fn create_table(&self) -> TableCreateStatement {
        Table::create()
            .table(Alias::new(self.table))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("scope")).string().not_null())
            .col(ColumnDef::new(Alias::new("request_id")).string().not_null())
            .col(
                ColumnDef::new(Alias::new("fingerprint"))
                    .string()
                    .not_null(),
            )
            .col(
                ColumnDef::new(Alias::new("resource_id"))
                    .string()
                    .not_null(),
            )
            .col(
                ColumnDef::new(Alias::new("create_time"))
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .primary_key(
                sea_orm::sea_query::Index::create()
                    .col(Alias::new("scope"))
                    .col(Alias::new("request_id")),
            )
            .to_owned()
    }

    /// The migration statement indexing claims by age, for the purge.
    pub fn create_time_index(&self) -> IndexCreateStatement {
        Index::create()
            .name(format!("{}_create_time", self.table))
            .table(Alias::new(self.table))
            .col(Alias::new("create_time"))
            .if_not_exists()
            .to_owned()
    }

    /// Deletes the keys claimed before `cutoff`, [`PURGE_BATCH`] at a time in
    /// short transactions so that no write waits long behind the purge;
    /// returns how many went.
    pub async fn purge(
        &self,
        db: &DatabaseConnection,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        let mut purged = 0;
        loop {
            let oldest = Query::select()
                .columns([Alias::new("scope"), Alias::new("request_id")])
                .from(Alias::new(self.table))
                .and_where(Expr::col(Alias::new("create_time")).lt(cutoff))
                .limit(PURGE_BATCH)
                .to_owned();
            let delete = Query::delete()
                .from_table(Alias::new(self.table))
                .and_where(
                    Expr::tuple([
                        Expr::col(Alias::new("scope")),
                        Expr::col(Alias::new("request_id")),
                    ])
                    .in_subquery(oldest),
                )
                .to_owned();
            let txn = crate::db::begin_write(db).await?;
            let deleted = txn.execute(&delete).await?.rows_affected();
            txn.commit().await?;
            purged += deleted;
            if deleted < PURGE_BATCH {
                return Ok(purged);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Runs the create `work` in one write transaction that first claims
    /// `key` in `scope` (the RPC's name, e.g. `CreateDocument`). `work` gets
    /// [`Claimed::New`] with the id the resource takes, or — when the same
    /// request came before — [`Claimed::Replay`] with the id it created, to
    /// answer with. The transaction commits when `work` succeeds.
    pub async fn create<T>(
        &self,
        db: &DatabaseConnection,
        scope: &str,
        key: Option<&RequestKey>,
        work: impl AsyncFnOnce(&DatabaseTransaction, Claimed) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        crate::db::write(db, async |txn| {
            let claimed = self.claim_in(txn, scope, key).await?;
            work(txn, claimed).await
        })
        .await
    }

    /// Claims `key` in `scope` inside an open write transaction, for a new
    /// resource id; for RPCs whose transaction does more than one create.
    pub async fn claim_in(
        &self,
        txn: &DatabaseTransaction,
        scope: &str,
        key: Option<&RequestKey>,
    ) -> Result<Claimed, ApiError> {
        if self.in_order.contains(&scope) {
            crate::db::in_turn(txn, &format!("{}/{scope}", self.table)).await?;
        }
        let id = Uuid::now_v7();
        let Some(key) = key else {
            return Ok(Claimed::New(id));
        };
        match self
            .claim(txn, scope, &key.request_id, &key.request, &id.to_string())
            .await?
        {
            Claim::New => Ok(Claimed::New(id)),
            Claim::Replay { resource_id } => Ok(Claimed::Replay(
                Uuid::parse_str(&resource_id).map_err(ApiError::internal)?,
            )),
        }
    }

    /// Claims `request_id` within `scope` (e.g. `CreatePatient`) for the
    /// request whose canonical bytes are `request`, on behalf of the resource
    /// `resource_id` about to be created. Call inside the creating transaction.
    /// The primitive under [`IdempotencyKeys::create`], for a resource whose
    /// key is not a UUID (a template's version).
    pub async fn claim(
        &self,
        conn: &impl ConnectionTrait,
        scope: &str,
        request_id: &str,
        request: &[u8],
        resource_id: &str,
    ) -> Result<Claim, ApiError> {
        let fingerprint = fingerprint(request);
        let insert = Query::insert()
            .into_table(Alias::new(self.table))
            .columns([
                Alias::new("scope"),
                Alias::new("request_id"),
                Alias::new("fingerprint"),
                Alias::new("resource_id"),
                Alias::new("create_time"),
            ])
            .values_panic([
                scope.into(),
                request_id.into(),
                fingerprint.clone().into(),
                resource_id.into(),
                chrono::Utc::now().into(),
            ])
            .on_conflict(
                OnConflict::columns([Alias::new("scope"), Alias::new("request_id")])
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        if conn.execute(&insert).await?.rows_affected() == 1 {
            return Ok(Claim::New);
        }

        let (stored_fingerprint, resource_id) = self
            .find(conn, scope, request_id)
            .await?
            .ok_or_else(|| ApiError::internal("idempotency key vanished after a conflict"))?;
        if stored_fingerprint != fingerprint {
            return Err(ApiError::invalid(
                "request_id",
                "was already used for a different request",
            ));
        }
        Ok(Claim::Replay { resource_id })
    }

    /// The resource a key already created, if the same request used it
    /// before; the same key with another request is refused. For RPCs whose
    /// answer depends on the moment (a retry must replay, not recompute).
    pub async fn lookup(
        &self,
        conn: &impl ConnectionTrait,
        scope: &str,
        request_id: &str,
        request: &[u8],
    ) -> Result<Option<String>, ApiError> {
        let Some((stored_fingerprint, resource_id)) = self.find(conn, scope, request_id).await?
        else {
            return Ok(None);
        };
        if stored_fingerprint != fingerprint(request) {
            return Err(ApiError::invalid(
                "request_id",
                "was already used for a different request",
            ));
        }
        Ok(Some(resource_id))
    }

    async fn find(
        &self,
        conn: &impl ConnectionTrait,
        scope: &str,
        request_id: &str,
    ) -> Result<Option<(String, String)>, DbErr> {
        let select = Query::select()
            .columns([Alias::new("fingerprint"), Alias::new("resource_id")])
            .from(Alias::new(self.table))
            .and_where(Expr::col(Alias::new("scope")).eq(scope))
            .and_where(Expr::col(Alias::new("request_id")).eq(request_id))
            .to_owned();
        let Some(row) = conn.query_one(&select).await? else {
            return Ok(None);
        };
        Ok(Some((
            row.try_get("", "fingerprint")?,
            row.try_get("", "resource_id")?,
        )))
    }
}

/// The migration indexing a service's claims by age (for the purge), named
/// as that service's migration list names it.
#[derive(Debug)]
pub struct IndexByAge {
    pub name: &'static str,
    pub keys: IdempotencyKeys,
}

impl sea_orm_migration::MigrationName for IndexByAge {
    fn name(&self) -> &str {
        self.name
    }
}

// async_trait's expansion names a lifetime the trait elides.
#[allow(elided_lifetimes_in_paths)]
#[sea_orm_migration::async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for IndexByAge {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        manager.create_index(self.keys.create_time_index()).await
    }
}

/// Purges the claims of every table in `keys` older than `retention`, now
/// and then at intervals (a 24th of the retention, between a minute and an
/// hour), for as long as the task runs. Failures are logged and retried at
/// the next interval: a late purge only keeps keys a little longer.
pub async fn purge_expired(
    db: DatabaseConnection,
    keys: Vec<IdempotencyKeys>,
    retention: Duration,
) {
    let every = (retention / 24).clamp(Duration::from_secs(60), Duration::from_secs(3600));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(cutoff) = chrono::TimeDelta::from_std(retention)
            .ok()
            .and_then(|retention| Utc::now().checked_sub_signed(retention))
        else {
            continue;
        };
        for table in &keys {
            match table.purge(&db, cutoff).await {
                Ok(0) => {}
                Ok(purged) => {
                    tracing::info!(table = table.table, purged, "purged expired request ids")
                }
                Err(error) => {
                    tracing::warn!(table = table.table, %error, "could not purge expired request ids")
                }
            }
        }
    }
}

fn fingerprint(request: &[u8]) -> String {
    Sha256::digest(request)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
