//! The trail (`audit_trail`), one row per event, and the head of each chain
//! (`audit_chain_heads`). The database holds the rules itself: one event
//! per (chain, seq) (unique index); UPDATE and DELETE of an event refused
//! by row triggers, TRUNCATE by a statement trigger (PostgreSQL); a head
//! never deleted and never moved back. On PostgreSQL chains sort bytewise
//! (`COLLATE "C"`), as `medsec audit verify` walks them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000001_create_audit_trail"
    }
}

fn column(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

/// A chain's name: bytewise order on PostgreSQL.
fn chain(backend: DbBackend) -> ColumnDef {
    let mut column = column("chain");
    column.text().not_null();
    if backend == DbBackend::Postgres {
        column.extra("COLLATE \"C\"");
    }
    column
}

fn text(name: &str) -> ColumnDef {
    column(name).text().not_null().to_owned()
}

fn text_null(name: &str) -> ColumnDef {
    column(name).text().null().to_owned()
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("audit_trail"))
                    .col(column("id").uuid().not_null().primary_key())
                    .col(chain(backend))
                    .col(column("seq").big_integer().not_null())
                    .col(column("prev_hash").string_len(64).not_null())
                    .col(column("hash").string_len(64).not_null())
                    .col(column("time").timestamp_with_time_zone().not_null())
                    .col(text("service"))
                    .col(text("method"))
                    .col(text("subject"))
                    .col(text("roles"))
                    .col(text("purpose"))
                    .col(text_null("reason"))
                    .col(
                        column("outcome").string_len(16).not_null().check(
                            Expr::col(Alias::new("outcome")).is_in(["ok", "denied", "failed"]),
                        ),
                    )
                    .col(text("resource"))
                    .col(column("patient_id").uuid().null())
                    .col(column("filter_hash").string_len(64).null())
                    .col(text("trace_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("audit_chain_heads"))
                    .col(chain(backend).primary_key())
                    .col(column("seq").big_integer().not_null())
                    .col(column("hash").string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            ("audit_trail_chain_seq", &["chain", "seq"][..], true),
            ("audit_trail_patient", &["patient_id", "id"][..], false),
        ] {
            let mut index = Index::create()
                .name(name)
                .table(Alias::new("audit_trail"))
                .to_owned();
            for column in columns {
                index.col(Alias::new(*column));
            }
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }

        let refusals: &[&str] = match backend {
            DbBackend::Postgres => &[
                "CREATE FUNCTION audit_trail_append_only() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN \
                 RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP; END $$",
                "CREATE TRIGGER audit_trail_no_update_or_delete BEFORE UPDATE OR DELETE \
                 ON audit_trail FOR EACH ROW EXECUTE FUNCTION audit_trail_append_only()",
                "CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE \
                 ON audit_trail FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only()",
                "CREATE FUNCTION audit_chain_heads_forward() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN \
                 IF TG_OP = 'UPDATE' AND NEW.chain = OLD.chain AND NEW.seq >= OLD.seq THEN \
                 RETURN NEW; END IF; \
                 RAISE EXCEPTION 'audit chain heads only move forward: % refused', TG_OP; END $$",
                "CREATE TRIGGER audit_chain_heads_forward BEFORE UPDATE OR DELETE \
                 ON audit_chain_heads FOR EACH ROW EXECUTE FUNCTION audit_chain_heads_forward()",
                "CREATE TRIGGER audit_chain_heads_no_truncate BEFORE TRUNCATE \
                 ON audit_chain_heads FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_heads_forward()",
            ],
            _ => &[
                "CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail \
                 BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: UPDATE refused'); END",
                "CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail \
                 BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE refused'); END",
                "CREATE TRIGGER audit_chain_heads_no_delete BEFORE DELETE ON audit_chain_heads \
                 BEGIN SELECT RAISE(ABORT, 'audit chain heads only move forward: DELETE refused'); END",
                "CREATE TRIGGER audit_chain_heads_forward BEFORE UPDATE ON audit_chain_heads \
                 WHEN NEW.chain <> OLD.chain OR NEW.seq < OLD.seq \
                 BEGIN SELECT RAISE(ABORT, 'audit chain heads only move forward: UPDATE refused'); END",
            ],
        };
        let db = manager.get_connection();
        for statement in refusals {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
