//! The outbox (`event_outbox`) and the consumers' inbox (`event_inbox`).
//! The database holds the rules that matter under concurrency: one row per
//! event id, one position per relayed event, one inbox row per (consumer,
//! event).

use sea_orm_migration::prelude::*;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261215_000001_create_events"
    }
}

fn column(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("event_outbox"))
                    .col(
                        column("seq")
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(column("id").uuid().not_null().unique_key())
                    .col(column("source").string_len(32).not_null())
                    .col(column("kind").string_len(128).not_null())
                    .col(column("subject").string_len(160).not_null())
                    .col(column("envelope").blob().not_null())
                    .col(column("created_ms").big_integer().not_null())
                    .col(column("position").big_integer().null().unique_key())
                    .col(column("relayed_ms").big_integer().null())
                    .col(column("attempts").integer().not_null().default(0))
                    .col(column("next_attempt_ms").big_integer().not_null())
                    .col(column("claimed_by").uuid().null())
                    .col(column("claimed_until_ms").big_integer().null())
                    .col(column("last_error").text().null())
                    .to_owned(),
            )
            .await?;
        // What the relay claims (unrelayed, oldest first), one subject's
        // earlier rows, and what the pruner drops (relayed, oldest first).
        for (name, columns) in [
            ("event_outbox_pending", &["position", "seq"][..]),
            ("event_outbox_subject", &["subject", "seq"][..]),
            ("event_outbox_relayed", &["relayed_ms"][..]),
        ] {
            let mut index = Index::create()
                .name(name)
                .table(Alias::new("event_outbox"))
                .to_owned();
            for column in columns {
                index.col(Alias::new(*column));
            }
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("event_inbox"))
                    .col(column("consumer").string_len(64).not_null())
                    .col(column("event_id").uuid().not_null())
                    .col(column("kind").string_len(128).not_null())
                    .col(column("handled_ms").big_integer().not_null())
                    .col(column("outcome").text().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("consumer"))
                            .col(Alias::new("event_id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("event_inbox_handled")
                    .table(Alias::new("event_inbox"))
                    .col(Alias::new("handled_ms"))
                    .to_owned(),
            )
            .await
    }
}
