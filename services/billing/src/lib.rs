//! BillingService. It is registered, migrated and reported SERVING from the
//! start; its RPCs and tables arrive with the billing issue.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use medsec_platform::config::ServerSettings;
use medsec_proto::billing::v1::billing_service_server::{BillingService, BillingServiceServer};
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::prelude::*;

/// The gRPC name of the service, for health checks.
pub const SERVICE_NAME: &str = "medsec.billing.v1.BillingService";

/// BillingService over one database.
#[derive(Debug, Clone)]
pub struct BillingApi {
    #[allow(dead_code)] // read by the RPCs the billing issue adds
    db: DatabaseConnection,
}

impl BillingService for BillingApi {}

/// The tonic server for BillingService, with the configured message limits.
pub fn service(
    db: DatabaseConnection,
    limits: &ServerSettings,
) -> BillingServiceServer<BillingApi> {
    BillingServiceServer::new(BillingApi { db })
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes)
}

/// BillingService's migrations, tracked in a table of its own.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }

    fn migration_table_name() -> DynIden {
        "billing_migrations".into_iden()
    }
}

/// Applies BillingService's pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    medsec_platform::db::migrate::<Migrator>(db).await
}
