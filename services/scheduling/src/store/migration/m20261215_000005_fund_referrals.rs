//! Referrals say who pays for the care (`funding_kind`: `nhs`, `self_pay`
//! or `insurer`, with the insurer's name, the policy number and a
//! pre-authorisation); existing referrals are the NHS's.

use sea_orm_migration::prelude::*;

use super::name;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261215_000005_fund_referrals"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        let columns = [
            ColumnDef::new(name("funding_kind"))
                .string_len(16)
                .not_null()
                .default("nhs")
                .check(Expr::col(name("funding_kind")).is_in(["nhs", "self_pay", "insurer"]))
                .to_owned(),
            ColumnDef::new(name("insurer_name"))
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(name("policy_number"))
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(name("preauthorisation_code"))
                .string()
                .null()
                .to_owned(),
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(name("referrals"))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
