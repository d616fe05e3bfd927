//! SchedulingService. It is registered, migrated and reported SERVING from the
//! start; its RPCs and tables arrive with the scheduling issue.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use medsec_platform::config::ServerSettings;
use medsec_proto::scheduling::v1::scheduling_service_server::{
    SchedulingService, SchedulingServiceServer,
};
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::prelude::*;

/// The gRPC name of the service, for health checks.
pub const SERVICE_NAME: &str = "medsec.scheduling.v1.SchedulingService";

/// SchedulingService over one database.
#[derive(Debug, Clone)]
pub struct SchedulingApi {
    #[allow(dead_code)] // read by the RPCs the scheduling issue adds
    db: DatabaseConnection,
}

impl SchedulingService for SchedulingApi {}

/// The tonic server for SchedulingService, with the configured message limits.
pub fn service(
    db: DatabaseConnection,
    limits: &ServerSettings,
) -> SchedulingServiceServer<SchedulingApi> {
    SchedulingServiceServer::new(SchedulingApi { db })
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes)
}

/// SchedulingService's migrations, tracked in a table of its own.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }

    fn migration_table_name() -> DynIden {
        "scheduling_migrations".into_iden()
    }
}

/// Applies SchedulingService's pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    medsec_platform::db::migrate::<Migrator>(db).await
}
