//! Optimisation runs: proposals and their allocations, the per-specialty run
//! lock (SQLite only; PostgreSQL uses advisory locks), and tentative holds on
//! slots offered to one referral.

use sea_orm_migration::prelude::*;

use super::{big, big_null, boolean, date, double, id, index, instant, instant_null, int};
use super::{name, table, text, text_null, uuid, uuid_null};

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_add_optimisation"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [uuid_null("held_for_referral"), big_null("held_until")] {
            manager
                .alter_table(
                    Table::alter()
                        .table(name("slots"))
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let tables = [
            table(
                "proposals",
                vec![
                    id(),
                    text("specialty"),
                    date("horizon_start"),
                    date("horizon_end"),
                    text("status"),
                    boolean("optimal"),
                    big("objective"),
                    big("greedy_objective"),
                    int("referrals"),
                    int("slots"),
                    int("allocated"),
                    int("unallocated"),
                    int("breaches"),
                    int("greedy_breaches"),
                    double("mean_wait_days"),
                    int("max_wait_days"),
                    double("solve_seconds"),
                    double("run_seconds"),
                    instant("create_time"),
                    instant_null("commit_time"),
                    int("booked"),
                    int("not_booked"),
                ],
                &[],
            ),
            table(
                "proposal_allocations",
                vec![
                    uuid("proposal_id"),
                    uuid("referral_id"),
                    uuid("patient_id"),
                    uuid("slot_id"),
                    text("specialty"),
                    date("slot_date"),
                    uuid("clinician_id"),
                    int("wait_days"),
                    boolean("breach"),
                    boolean("preference_missed"),
                    big("cost"),
                    uuid_null("appointment_id"),
                    text_null("not_booked_reason"),
                ],
                &[("proposal_id", "proposals")],
            )
            .primary_key(
                Index::create()
                    .col(name("proposal_id"))
                    .col(name("referral_id")),
            )
            .to_owned(),
            table(
                "optimisation_locks",
                vec![
                    ColumnDef::new(name("specialty"))
                        .string()
                        .not_null()
                        .primary_key()
                        .to_owned(),
                    uuid("holder"),
                    big("expires_at"),
                ],
                &[],
            ),
        ];
        for statement in tables {
            manager.create_table(statement).await?;
        }
        manager
            .create_index(index("proposals", &["specialty", "id"], false))
            .await
    }
}
