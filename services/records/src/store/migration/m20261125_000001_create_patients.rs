//! Migration 1: the patient register (`patients`, its indexes, with the one
//! active registration per NHS number held by a partial unique index) and
//! the table of claimed idempotency keys.

use sea_orm_migration::prelude::*;

use crate::store::IDEMPOTENCY_KEYS;

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
pub(super) struct CreatePatients;

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
