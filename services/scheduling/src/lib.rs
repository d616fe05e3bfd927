//! SchedulingService: staff and the duty rota, clinicians' diaries (session
//! templates, slots, absences), appointments, the waiting list with
//! referral-to-treatment clocks, and routing of patient enquiries.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod api;
pub mod domain;
pub mod patients;
pub mod store;

use medsec_platform::Settings;
use medsec_proto::scheduling::v1::scheduling_service_server::SchedulingServiceServer;
use sea_orm::{DatabaseConnection, DbErr};

pub use api::{POLICY, SchedulingApi};

/// The gRPC name of the service, for health checks.
pub const SERVICE_NAME: &str = "medsec.scheduling.v1.SchedulingService";

/// The tonic server for SchedulingService, with the configured limits.
pub fn service(
    db: DatabaseConnection,
    settings: &Settings,
) -> SchedulingServiceServer<SchedulingApi> {
    service_asking(db, settings, patients::Patients::unchecked())
}

/// As [`service`], asking records through `patients` whether a patient may
/// be booked or referred.
pub fn service_asking(
    db: DatabaseConnection,
    settings: &Settings,
    patients: patients::Patients,
) -> SchedulingServiceServer<SchedulingApi> {
    SchedulingServiceServer::new(SchedulingApi::new(db, settings, patients))
        .max_decoding_message_size(settings.scheduling.max_message_bytes)
        .max_encoding_message_size(settings.scheduling.max_message_bytes)
}

/// SchedulingService's reactions to the suite's events.
pub fn consumers(
    _db: &DatabaseConnection,
    settings: &Settings,
) -> Vec<std::sync::Arc<dyn medsec_platform::events::Consumer>> {
    let mut consumers: Vec<std::sync::Arc<dyn medsec_platform::events::Consumer>> =
        vec![std::sync::Arc::new(store::reactions::ArchivedPatients)];
    if settings.scheduling.automatic_offers {
        consumers.push(std::sync::Arc::new(store::reactions::FreedSlots {
            hold_for: std::time::Duration::from_secs(
                settings
                    .scheduling
                    .automatic_offer_hold_hours
                    .saturating_mul(3600),
            ),
        }));
    }
    consumers
}

/// Applies the audit trail's and the events' pending migrations, then SchedulingService's (table "scheduling_migrations").
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    medsec_platform::audit::migrate(db).await?;
    medsec_platform::events::migrate(db).await?;
    medsec_platform::db::migrate::<store::Migrator>(db).await
}
