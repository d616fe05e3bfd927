//! RecordsService: the patient's file — the register, intake forms, medical
//! history, clinical documents, samples sent for testing — and the audit
//! trail of every access to it.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod api;
pub mod domain;
pub mod store;

use medsec_platform::Settings;
use medsec_proto::records::v1::records_service_server::RecordsServiceServer;
use sea_orm::{DatabaseConnection, DbErr};

pub use api::{POLICY, RecordsApi};

/// The gRPC name of the service, for health checks.
pub const SERVICE_NAME: &str = "medsec.records.v1.RecordsService";

/// The tonic server for RecordsService, with the configured limits.
pub fn service(db: DatabaseConnection, settings: &Settings) -> RecordsServiceServer<RecordsApi> {
    RecordsServiceServer::new(RecordsApi::new(db, settings.records.clone()))
        .max_decoding_message_size(settings.records.max_message_bytes)
        .max_encoding_message_size(settings.records.max_message_bytes)
}

/// Applies the audit trail's and the events' pending migrations, then RecordsService's.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    medsec_platform::audit::migrate(db).await?;
    medsec_platform::events::migrate(db).await?;
    medsec_platform::db::migrate::<store::Migrator>(db).await
}
