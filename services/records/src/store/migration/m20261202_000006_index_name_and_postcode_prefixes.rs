//! Migration 6: prefix searches (a family name's start, a postcode's
//! district) are served by an index on PostgreSQL whatever the database's
//! collation. The searches compare a byte range in the "C" collation
//! beside their LIKE ([`super::super::patients`]); these indexes are built
//! in that collation. A prepared LIKE with a bound pattern cannot use an
//! index at all: PostgreSQL's generic plan does not see the pattern's fixed
//! prefix. SQLite's existing indexes already compare bytes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(Debug)]
pub(super) struct IndexNameAndPostcodePrefixes;

impl MigrationName for IndexNameAndPostcodePrefixes {
    fn name(&self) -> &str {
        "m20261202_000006_index_name_and_postcode_prefixes"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for IndexNameAndPostcodePrefixes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for statement in [
            r#"CREATE INDEX IF NOT EXISTS patients_family_name_folded_c
               ON patients (family_name_folded COLLATE "C", id)"#,
            r#"CREATE INDEX IF NOT EXISTS patients_address_postcode_c
               ON patients (address_postcode COLLATE "C", id)"#,
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
