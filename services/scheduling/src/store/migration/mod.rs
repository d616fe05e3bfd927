//! SchedulingService's schema, applied in order and tracked in its own table
//! so services can be migrated and scaled apart; one file per migration,
//! named as it was applied, and the column shorthands they share. The rules
//! the database holds by itself are in them: one slot per clinician and
//! start instant (unique index), 0 <= booked <= capacity (CHECK), and
//! references between rows (foreign keys).

mod m20261125_000002_add_optimisation;
mod m20261201_000001_create_scheduling;
mod m20261201_000004_record_left_out_referrals;
mod m20261202_000006_index_slots_by_specialty;
mod m20261215_000005_fund_referrals;

use medsec_platform::idempotency::IndexByAge;
use sea_orm_migration::prelude::*;

use super::IDEMPOTENCY_KEYS;

#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261201_000001_create_scheduling::Migration),
            Box::new(m20261125_000002_add_optimisation::Migration),
            Box::new(IndexByAge {
                name: "m20261201_000003_index_request_ids_by_age",
                keys: IDEMPOTENCY_KEYS,
            }),
            Box::new(m20261201_000004_record_left_out_referrals::Migration),
            Box::new(m20261215_000005_fund_referrals::Migration),
            Box::new(m20261202_000006_index_slots_by_specialty::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "scheduling_migrations".into_iden()
    }
}

// Shorthands for the columns, keys and indexes the migrations declare.

fn name(text: &str) -> Alias {
    Alias::new(text)
}

fn id() -> ColumnDef {
    ColumnDef::new(name("id"))
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

fn uuid(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).uuid().not_null().to_owned()
}

fn uuid_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).uuid().null().to_owned()
}

fn text(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).string().not_null().to_owned()
}

fn text_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).string().null().to_owned()
}

fn big(column: &str) -> ColumnDef {
    ColumnDef::new(name(column))
        .big_integer()
        .not_null()
        .to_owned()
}

fn big_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).big_integer().null().to_owned()
}

fn int(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).integer().not_null().to_owned()
}

fn double(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).double().not_null().to_owned()
}

fn date(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).date().not_null().to_owned()
}

fn date_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).date().null().to_owned()
}

fn boolean(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).boolean().not_null().to_owned()
}

fn instant(column: &str) -> ColumnDef {
    ColumnDef::new(name(column))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn instant_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn references(table: &str, column: &str, target: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(name(table), name(column))
        .to(name(target), name("id"))
        .to_owned()
}

fn table(
    table_name: &str,
    columns: Vec<ColumnDef>,
    foreign_keys: &[(&str, &str)],
) -> TableCreateStatement {
    let mut statement = Table::create();
    statement.table(name(table_name));
    for mut column in columns {
        statement.col(&mut column);
    }
    for (column, target) in foreign_keys {
        statement.foreign_key(&mut references(table_name, column, target));
    }
    statement.to_owned()
}

fn index(table: &str, columns: &[&str], unique: bool) -> IndexCreateStatement {
    let mut statement = Index::create();
    statement
        .name(format!("{table}_{}", columns.join("_")))
        .table(name(table));
    for column in columns {
        statement.col(name(column));
    }
    if unique {
        statement.unique();
    }
    statement.to_owned()
}
