//! The events' schema, tracked in its own table (`event_migrations`): every
//! service's `migrate` applies it, and on a shared database the second
//! finds nothing to do. One file per migration, named as it was applied.

use sea_orm_migration::prelude::*;

mod m20261215_000001_create_events;

#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261215_000001_create_events::Migration)]
    }

    fn migration_table_name() -> DynIden {
        "event_migrations".into_iden()
    }
}
