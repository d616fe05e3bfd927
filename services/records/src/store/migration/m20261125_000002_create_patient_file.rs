//! Migration 2: the rest of the patient file — intake forms, medical history,
//! clinical documents, specimens — and the append-only audit trail.

use sea_orm_migration::prelude::*;

/// Intake forms, medical history, clinical documents, specimens and the
/// audit trail.
#[derive(Debug)]
pub(super) struct CreatePatientFile;

impl MigrationName for CreatePatientFile {
    fn name(&self) -> &str {
        "m20261125_000002_create_patient_file"
    }
}

/// A column of `name` and of the type `kind` sets (e.g. `ColumnDef::text`),
/// NOT NULL.
fn column(name: &'static str, kind: fn(&mut ColumnDef) -> &mut ColumnDef) -> ColumnDef {
    let mut column = ColumnDef::new(Alias::new(name));
    kind(&mut column).not_null();
    column
}

/// As [`column`], but NULL allowed.
fn nullable(name: &'static str, kind: fn(&mut ColumnDef) -> &mut ColumnDef) -> ColumnDef {
    let mut column = ColumnDef::new(Alias::new(name));
    kind(&mut column).null();
    column
}

fn id(name: &'static str) -> ColumnDef {
    column(name, ColumnDef::uuid)
}

fn text(name: &'static str) -> ColumnDef {
    column(name, ColumnDef::text)
}

fn instant(name: &'static str) -> ColumnDef {
    column(name, ColumnDef::timestamp_with_time_zone)
}

fn integer(name: &'static str) -> ColumnDef {
    column(name, ColumnDef::integer)
}

fn big_integer(name: &'static str) -> ColumnDef {
    column(name, ColumnDef::big_integer)
}

fn table(name: &'static str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let mut table = Table::create().table(Alias::new(name)).to_owned();
    for mut column in columns {
        table.col(&mut column);
    }
    table
}

fn primary_key(columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create();
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
}

fn index(
    table: &'static str,
    name: &str,
    columns: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut index = Index::create()
        .name(name)
        .table(Alias::new(table))
        .to_owned();
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    index
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreatePatientFile {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            table(
                "audit_events",
                vec![
                    id("id").primary_key().to_owned(),
                    instant("time"),
                    text("actor"),
                    text("role"),
                    text("purpose"),
                    text("action"),
                    text("resource"),
                    id("patient_id"),
                    text("trace_id"),
                ],
            ),
            table(
                "documents",
                vec![
                    id("id").primary_key().to_owned(),
                    id("lineage_id"),
                    id("patient_id"),
                    integer("version"),
                    text("status"),
                    text("title"),
                    text("kind"),
                    text("content_type"),
                    text("author"),
                    big_integer("size_bytes"),
                    text("sha256"),
                    nullable("supersedes_id", ColumnDef::uuid),
                    instant("create_time"),
                    big_integer("revision"),
                ],
            ),
            table(
                "document_contents",
                vec![
                    id("document_id").primary_key().to_owned(),
                    column("content", ColumnDef::blob),
                ],
            ),
            table(
                "test_types",
                vec![
                    text("code").primary_key().to_owned(),
                    text("name"),
                    text("specimen_type"),
                    integer("turnaround_hours"),
                    instant("create_time"),
                ],
            ),
            table(
                "specimens",
                vec![
                    id("id").primary_key().to_owned(),
                    id("patient_id"),
                    text("test_code"),
                    text("state"),
                    text("notes"),
                    nullable("courier", ColumnDef::text),
                    nullable("lab", ColumnDef::text),
                    nullable("tracking_reference", ColumnDef::text),
                    nullable("result_summary", ColumnDef::text),
                    column("abnormal", ColumnDef::boolean),
                    nullable("result_document_id", ColumnDef::uuid),
                    nullable("rejection_reason", ColumnDef::text),
                    nullable("dispatch_time", ColumnDef::timestamp_with_time_zone),
                    nullable("due_time", ColumnDef::timestamp_with_time_zone),
                    instant("create_time"),
                    instant("update_time"),
                    big_integer("revision"),
                ],
            ),
            table(
                "specimen_events",
                vec![
                    id("id").primary_key().to_owned(),
                    id("specimen_id"),
                    text("state"),
                    instant("time"),
                    text("actor"),
                    text("details"),
                ],
            ),
            table(
                "history_entries",
                vec![
                    id("id").primary_key().to_owned(),
                    id("patient_id"),
                    text("kind"),
                    text("details"),
                    instant("create_time"),
                    instant("update_time"),
                    big_integer("revision"),
                ],
            ),
            table(
                "form_templates",
                vec![
                    id("id"),
                    integer("version"),
                    text("title"),
                    text("items"),
                    column("latest", ColumnDef::boolean),
                    instant("create_time"),
                ],
            )
            .primary_key(&mut primary_key(&["id", "version"]))
            .to_owned(),
            table(
                "form_responses",
                vec![
                    id("id").primary_key().to_owned(),
                    id("patient_id"),
                    id("template_id"),
                    integer("template_version"),
                    text("status"),
                    integer("revision"),
                    instant("create_time"),
                    instant("update_time"),
                ],
            ),
            table(
                "form_response_revisions",
                vec![
                    id("response_id"),
                    integer("revision"),
                    text("status"),
                    text("answers"),
                    text("author"),
                    instant("time"),
                ],
            )
            .primary_key(&mut primary_key(&["response_id", "revision"]))
            .to_owned(),
        ];
        for table in tables {
            manager.create_table(table).await?;
        }

        let indexes = [
            index(
                "audit_events",
                "audit_events_patient",
                &["patient_id", "id"],
                false,
            ),
            index(
                "documents",
                "documents_patient",
                &["patient_id", "id"],
                false,
            ),
            index(
                "documents",
                "documents_lineage_version",
                &["lineage_id", "version"],
                true,
            ),
            index(
                "specimens",
                "specimens_patient",
                &["patient_id", "id"],
                false,
            ),
            index(
                "specimens",
                "specimens_with_lab",
                &["state", "dispatch_time"],
                false,
            ),
            index(
                "specimen_events",
                "specimen_events_specimen",
                &["specimen_id", "id"],
                false,
            ),
            index(
                "history_entries",
                "history_entries_patient",
                &["patient_id", "id"],
                false,
            ),
            index(
                "form_responses",
                "form_responses_patient",
                &["patient_id", "id"],
                false,
            ),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }

        // The audit trail is append-only, held by the database itself.
        let db = manager.get_connection();
        let refuse: &[&str] = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => &[
                "CREATE FUNCTION audit_events_append_only() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN \
                 RAISE EXCEPTION 'audit events are append-only'; END $$",
                "CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE \
                 ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
            ],
            _ => &[
                "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
                "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
            ],
        };
        for statement in refuse {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
