//! Proposals say which waiting referrals a run left out because their stored
//! records could not be scheduled: how many, and the first of them with why
//! (JSON, `[{"referral_id": …, "reason": …}, …]`).

use sea_orm_migration::prelude::*;

use super::name;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000004_record_left_out_referrals"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        let columns = [
            ColumnDef::new(name("referrals_left_out"))
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(name("left_out"))
                .string()
                .not_null()
                .default("[]")
                .to_owned(),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(name("proposals"))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
