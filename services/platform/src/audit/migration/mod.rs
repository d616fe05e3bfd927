//! The trail's schema, tracked in its own table (`audit_migrations`): every
//! service's `migrate` applies it first, and on a shared database the
//! second finds nothing to do. One file per migration, named as it was
//! applied.

use sea_orm_migration::prelude::*;

mod m20261210_000001_create_audit_trail;

#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261210_000001_create_audit_trail::Migration)]
    }

    fn migration_table_name() -> DynIden {
        "audit_migrations".into_iden()
    }
}
