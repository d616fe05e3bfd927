//! RecordsService's schema, applied in order and tracked in its own table so
//! services can be migrated and scaled apart: one file per migration, named
//! as the migration is (a name never changes once released, so databases
//! already migrated stay valid). The suite's audit trail is the platform's,
//! migrated first by `medsec_records::migrate`.

use medsec_platform::idempotency::IndexByAge;
use sea_orm_migration::prelude::*;

use super::IDEMPOTENCY_KEYS;

mod m20261125_000001_create_patients;
mod m20261125_000002_create_patient_file;
mod m20261202_000006_index_name_and_postcode_prefixes;
mod m20261210_000003_copy_audit_events_to_trail;
mod m20261216_000005_add_specimen_overdue_raised_at;

use m20261125_000001_create_patients::CreatePatients;
use m20261125_000002_create_patient_file::CreatePatientFile;
use m20261202_000006_index_name_and_postcode_prefixes::IndexNameAndPostcodePrefixes;
use m20261210_000003_copy_audit_events_to_trail::CopyAuditEventsToTrail;
use m20261216_000005_add_specimen_overdue_raised_at::AddSpecimenOverdueRaisedAt;

#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreatePatients),
            Box::new(CreatePatientFile),
            Box::new(CopyAuditEventsToTrail),
            Box::new(IndexByAge {
                name: "m20261211_000004_index_request_ids_by_age",
                keys: IDEMPOTENCY_KEYS,
            }),
            Box::new(AddSpecimenOverdueRaisedAt),
            Box::new(IndexNameAndPostcodePrefixes),
        ]
    }

    fn migration_table_name() -> DynIden {
        "records_migrations".into_iden()
    }
}
