//! BillingService's migrations, tracked in their own table
//! ("billing_migrations") so services can be migrated and scaled apart: one
//! file per migration, named as it was first applied, so databases already
//! migrated stay valid.

use medsec_platform::idempotency::IndexByAge;
use sea_orm_migration::prelude::*;

use super::IDEMPOTENCY_KEYS;

mod m20261201_000001_create_billing;

/// Every migration of BillingService, in order.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261201_000001_create_billing::CreateBilling),
            Box::new(IndexByAge {
                name: "m20261201_000002_index_request_ids_by_age",
                keys: IDEMPOTENCY_KEYS,
            }),
        ]
    }

    fn migration_table_name() -> DynIden {
        "billing_migrations".into_iden()
    }
}
