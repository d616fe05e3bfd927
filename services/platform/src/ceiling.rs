//! CeilingService: what the server shell itself does, with no clinic work,
//! for `medsec load` to measure each workload against in the same run
//! (docs/CAPACITY.md). `Ping` answers at once; `Insert` writes one row in a
//! write transaction of its own, as every audited write does. Served only
//! when `server.ceiling` is true; its one table (`ceiling_rows`) is made
//! then, by its own migrations.

use chrono::Utc;
use medsec_proto::ceiling::v1 as pb;
use medsec_proto::ceiling::v1::ceiling_service_server::{CeilingService, CeilingServiceServer};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbErr};
use tonic::Request;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::Role;
use crate::auth::policy::{Rule, ServicePolicy};
use crate::request::Reader;

pub const SERVICE_NAME: &str = "medsec.ceiling.v1.CeilingService";

/// Who may measure the shell: administrators and services.
pub static POLICY: ServicePolicy = ServicePolicy {
    service: SERVICE_NAME,
    rules: &[
        Rule::other("Ping", &[Role::Admin, Role::Service]),
        Rule::other("Insert", &[Role::Admin, Role::Service]),
    ],
};

/// The largest message either RPC takes or gives.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The longest note `Insert` stores.
const MAX_NOTE_CHARS: usize = 64;

/// CeilingService over the suite's database.
#[derive(Debug, Clone)]
pub struct CeilingApi {
    db: DatabaseConnection,
}

impl CeilingApi {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn service(self) -> CeilingServiceServer<Self> {
        CeilingServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

crate::grpc_handlers! {
    CeilingApi as CeilingService, domain = "ceiling.medsec" {
        ping(pb::PingRequest) -> pb::PingResponse = ping;
        insert(pb::InsertRequest) -> pb::InsertResponse = insert;
    }
}

async fn ping(
    _api: &CeilingApi,
    _request: Request<pb::PingRequest>,
) -> Result<pb::PingResponse, ApiError> {
    Ok(pb::PingResponse {})
}

async fn insert(
    api: &CeilingApi,
    request: Request<pb::InsertRequest>,
) -> Result<pb::InsertResponse, ApiError> {
    let mut reader = Reader::new();
    let note = reader.optional_line("note", &request.get_ref().note, MAX_NOTE_CHARS);
    reader.finish(())?;
    let id = Uuid::now_v7();
    let mut row = Query::insert();
    row.into_table(Alias::new("ceiling_rows"))
        .columns([
            Alias::new("id"),
            Alias::new("note"),
            Alias::new("create_time"),
        ])
        .values([id.into(), note.into(), Utc::now().into()])
        .map_err(|error| ApiError::internal(error.to_string()))?;
    crate::db::write(&api.db, async |txn| {
        txn.execute(&row).await?;
        Ok(())
    })
    .await?;
    Ok(pb::InsertResponse { id: id.to_string() })
}

/// Makes the ceiling's table when missing (idempotent).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    crate::db::migrate::<migration::Migrator>(db).await
}

mod migration {
    use sea_orm_migration::prelude::*;

    #[derive(Debug)]
    pub(super) struct Migrator;

    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateRows)]
        }

        fn migration_table_name() -> DynIden {
            "ceiling_migrations".into_iden()
        }
    }

    #[derive(Debug)]
    struct CreateRows;

    impl MigrationName for CreateRows {
        fn name(&self) -> &str {
            "m20261202_000001_create_ceiling_rows"
        }
    }

    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateRows {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Alias::new("ceiling_rows"))
                        .if_not_exists()
                        .col(
                            ColumnDef::new(Alias::new("id"))
                                .uuid()
                                .not_null()
                                .primary_key(),
                        )
                        .col(
                            ColumnDef::new(Alias::new("note"))
                                .string_len(256)
                                .not_null(),
                        )
                        .col(
                            ColumnDef::new(Alias::new("create_time"))
                                .timestamp_with_time_zone()
                                .not_null(),
                        )
                        .to_owned(),
                )
                .await
        }
    }
}
