//! Migration 5: specimens remember when the overdue sweep raised
//! `SpecimenOverdue` for them (`overdue_raised_at`), so each is raised once.
//! Specimens already overdue are raised by the first sweep after it.

use sea_orm_migration::prelude::*;

#[derive(Debug)]
pub(super) struct AddSpecimenOverdueRaisedAt;

impl MigrationName for AddSpecimenOverdueRaisedAt {
    fn name(&self) -> &str {
        "m20261216_000005_add_specimen_overdue_raised_at"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddSpecimenOverdueRaisedAt {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("specimens"))
                    .add_column(
                        ColumnDef::new(Alias::new("overdue_raised_at"))
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }
}
