//! BillingService: the price list, charges for encounters, invoices with
//! payments and credit notes, and department budgets, in integer pence.

mod api;
pub mod domain;
pub mod store;

use medsec_platform::Settings;
use medsec_proto::billing::v1::billing_service_server::BillingServiceServer;
use sea_orm::{DatabaseConnection, DbErr};

pub use api::{BillingApi, POLICY};
pub use store::Migrator;

/// The gRPC name of the service, for health checks.
pub const SERVICE_NAME: &str = "medsec.billing.v1.BillingService";

/// The tonic server for BillingService, with the configured limits.
pub fn service(db: DatabaseConnection, settings: &Settings) -> BillingServiceServer<BillingApi> {
    BillingServiceServer::new(BillingApi::new(db))
        .max_decoding_message_size(settings.billing.max_message_bytes)
        .max_encoding_message_size(settings.billing.max_message_bytes)
}

/// BillingService's reactions to the suite's events: charges for attended
/// (and, with a DNA fee, missed) appointments.
pub fn consumers(
    settings: &Settings,
) -> Vec<std::sync::Arc<dyn medsec_platform::events::Consumer>> {
    vec![std::sync::Arc::new(store::reactions::AppointmentCharges {
        rules: settings.billing.charges.clone(),
    })]
}

/// Applies the audit trail's and the events' pending migrations, then BillingService's.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    medsec_platform::audit::migrate(db).await?;
    medsec_platform::events::migrate(db).await?;
    medsec_platform::db::migrate::<store::Migrator>(db).await
}
