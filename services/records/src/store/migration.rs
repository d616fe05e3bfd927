//! RecordsService's schema, applied in order and tracked in its own table so
//! services can be migrated and scaled apart.

use sea_orm_migration::prelude::*;

use super::IDEMPOTENCY_KEYS;

#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreatePatients), Box::new(CreatePatientFile)]
    }

    fn migration_table_name() -> DynIden {
        "records_migrations".into_iden()
    }
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
    NhsNumber,
    GivenName,
    FamilyName,
    FamilyNameFolded,
    BirthDate,
    Sex,
    AddressLines,
    AddressTown,
    AddressPostcode,
    Phone,
    Email,
    GpOdsCode,
    GpName,
    CreateTime,
    UpdateTime,
    ArchiveTime,
    Revision,
}

#[derive(Debug)]
struct CreatePatients;

impl MigrationName for CreatePatients {
    fn name(&self) -> &str {
        "m20261125_000001_create_patients"
    }
}

// `async_trait` spells the manager's lifetime its own way; naming it trips the
// macro, eliding it trips the lint.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreatePatients {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Patients::Table)
                    .col(ColumnDef::new(Patients::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Patients::NhsNumber)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Patients::GivenName).string().not_null())
                    .col(ColumnDef::new(Patients::FamilyName).string().not_null())
                    .col(
                        ColumnDef::new(Patients::FamilyNameFolded)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Patients::BirthDate).date().not_null())
                    .col(ColumnDef::new(Patients::Sex).string_len(16).not_null())
                    .col(ColumnDef::new(Patients::AddressLines).text())
                    .col(ColumnDef::new(Patients::AddressTown).string())
                    .col(ColumnDef::new(Patients::AddressPostcode).string_len(8))
                    .col(ColumnDef::new(Patients::Phone).string_len(16))
                    .col(ColumnDef::new(Patients::Email).string_len(254))
                    .col(ColumnDef::new(Patients::GpOdsCode).string_len(8))
                    .col(ColumnDef::new(Patients::GpName).string())
                    .col(
                        ColumnDef::new(Patients::CreateTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Patients::UpdateTime)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Patients::ArchiveTime).timestamp_with_time_zone())
                    .col(ColumnDef::new(Patients::Revision).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        // One active registration per NHS number, held by the database itself.
        // A partial index (PostgreSQL and SQLite both have them) leaves
        // archived registrations out.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX patients_active_nhs_number \
                 ON patients (nhs_number) WHERE archive_time IS NULL",
            )
            .await?;
        for (name, column) in [
            ("patients_family_name_folded", Patients::FamilyNameFolded),
            ("patients_birth_date", Patients::BirthDate),
            ("patients_address_postcode", Patients::AddressPostcode),
            ("patients_nhs_number", Patients::NhsNumber),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Patients::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager.create_table(IDEMPOTENCY_KEYS.create_table()).await
    }
}

/// Intake forms, medical history, clinical documents, specimens and the
/// audit trail.
#[derive(Debug)]
struct CreatePatientFile;

impl MigrationName for CreatePatientFile {
    fn name(&self) -> &str {
        "m20261125_000002_create_patient_file"
    }
}

fn id(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .uuid()
        .not_null()
        .to_owned()
}

fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .text()
        .not_null()
        .to_owned()
}

fn optional_text(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name)).text().null().to_owned()
}

fn instant(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn integer(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .integer()
        .not_null()
        .to_owned()
}

fn big_integer(name: &'static str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .to_owned()
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
                    ColumnDef::new(Alias::new("supersedes_id"))
                        .uuid()
                        .null()
                        .to_owned(),
                    instant("create_time"),
                    big_integer("revision"),
                ],
            ),
            table(
                "document_contents",
                vec![
                    id("document_id").primary_key().to_owned(),
                    ColumnDef::new(Alias::new("content"))
                        .blob()
                        .not_null()
                        .to_owned(),
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
                    optional_text("courier"),
                    optional_text("lab"),
                    optional_text("tracking_reference"),
                    optional_text("result_summary"),
                    ColumnDef::new(Alias::new("abnormal"))
                        .boolean()
                        .not_null()
                        .to_owned(),
                    ColumnDef::new(Alias::new("result_document_id"))
                        .uuid()
                        .null()
                        .to_owned(),
                    optional_text("rejection_reason"),
                    ColumnDef::new(Alias::new("dispatch_time"))
                        .timestamp_with_time_zone()
                        .null()
                        .to_owned(),
                    ColumnDef::new(Alias::new("due_time"))
                        .timestamp_with_time_zone()
                        .null()
                        .to_owned(),
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
                    ColumnDef::new(Alias::new("latest"))
                        .boolean()
                        .not_null()
                        .to_owned(),
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
