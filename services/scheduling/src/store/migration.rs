//! SchedulingService's schema, applied in order and tracked in its own table
//! so services can be migrated and scaled apart. The rules the database holds
//! by itself are here: one slot per clinician and start instant (unique
//! index), 0 <= booked <= capacity (CHECK), and references between rows
//! (foreign keys).

use sea_orm_migration::prelude::*;

use super::IDEMPOTENCY_KEYS;

#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateScheduling), Box::new(AddOptimisation)]
    }

    fn migration_table_name() -> DynIden {
        "scheduling_migrations".into_iden()
    }
}

#[derive(Debug)]
struct CreateScheduling;

impl MigrationName for CreateScheduling {
    fn name(&self) -> &str {
        "m20261201_000001_create_scheduling"
    }
}

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

fn int(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).integer().not_null().to_owned()
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

// `async_trait` spells the manager's lifetime its own way; naming it trips the
// macro, eliding it trips the lint.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateScheduling {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            table(
                "staff",
                vec![
                    id(),
                    text("name"),
                    text("role"),
                    text_null("grade"),
                    text("specialties"),
                    text("skills"),
                    boolean("duty_manager"),
                    instant("create_time"),
                    big("revision"),
                ],
                &[],
            ),
            table(
                "locations",
                vec![id(), text("name"), text("address"), instant("create_time")],
                &[],
            ),
            table(
                "rooms",
                vec![
                    id(),
                    uuid("location_id"),
                    text("name"),
                    instant("create_time"),
                ],
                &[("location_id", "locations")],
            ),
            table(
                "duty_shifts",
                vec![
                    id(),
                    uuid("staff_id"),
                    big("start_at"),
                    big("end_at"),
                    instant("create_time"),
                ],
                &[("staff_id", "staff")],
            ),
            table(
                "session_templates",
                vec![
                    id(),
                    uuid("clinician_id"),
                    text("specialty"),
                    uuid("location_id"),
                    uuid_null("room_id"),
                    int("weekday"),
                    text("start_time"),
                    text("end_time"),
                    int("slot_minutes"),
                    text("kind"),
                    text("mode"),
                    int("capacity"),
                    date("valid_from"),
                    date_null("valid_to"),
                    instant("create_time"),
                ],
                &[
                    ("clinician_id", "staff"),
                    ("location_id", "locations"),
                    ("room_id", "rooms"),
                ],
            ),
            table(
                "slots",
                vec![
                    id(),
                    uuid("clinician_id"),
                    text("specialty"),
                    uuid("location_id"),
                    uuid_null("room_id"),
                    uuid_null("template_id"),
                    date("date"),
                    big("start_at"),
                    big("end_at"),
                    text("kind"),
                    text("mode"),
                    ColumnDef::new(name("capacity"))
                        .integer()
                        .not_null()
                        .check(Expr::col(name("capacity")).gte(1))
                        .to_owned(),
                    // The last line of defence for capacity: no code path can
                    // overbook, even one that forgets the guarded update.
                    ColumnDef::new(name("booked"))
                        .integer()
                        .not_null()
                        .check(
                            Expr::col(name("booked"))
                                .gte(0)
                                .and(Expr::col(name("booked")).lte(Expr::col(name("capacity")))),
                        )
                        .to_owned(),
                    boolean("unavailable"),
                    instant("create_time"),
                ],
                &[
                    ("clinician_id", "staff"),
                    ("location_id", "locations"),
                    ("room_id", "rooms"),
                    ("template_id", "session_templates"),
                ],
            ),
            table(
                "absences",
                vec![
                    id(),
                    uuid("clinician_id"),
                    big("start_at"),
                    big("end_at"),
                    text("reason"),
                    text("note"),
                    instant("create_time"),
                ],
                &[("clinician_id", "staff")],
            ),
            table(
                "referrals",
                vec![
                    id(),
                    uuid("patient_id"),
                    text("specialty"),
                    text("priority"),
                    date("clock_start"),
                    text("kind"),
                    date_null("earliest"),
                    text("unavailable"),
                    uuid_null("required_clinician"),
                    uuid_null("preferred_clinician"),
                    text("status"),
                    text_null("removal_reason"),
                    instant("create_time"),
                    instant("update_time"),
                    big("revision"),
                ],
                &[
                    ("required_clinician", "staff"),
                    ("preferred_clinician", "staff"),
                ],
            ),
            table(
                "appointments",
                vec![
                    id(),
                    uuid("slot_id"),
                    uuid("patient_id"),
                    uuid_null("referral_id"),
                    text("reason"),
                    text("status"),
                    uuid("clinician_id"),
                    big("start_at"),
                    big("end_at"),
                    text_null("cancelled_by"),
                    text_null("cancellation_reason"),
                    instant("create_time"),
                    instant("update_time"),
                    big("revision"),
                ],
                &[
                    ("slot_id", "slots"),
                    ("referral_id", "referrals"),
                    ("clinician_id", "staff"),
                ],
            ),
            table(
                "patient_booking_locks",
                vec![
                    ColumnDef::new(name("patient_id"))
                        .uuid()
                        .not_null()
                        .primary_key()
                        .to_owned(),
                    big("changes"),
                ],
                &[],
            ),
            table(
                "enquiries",
                vec![
                    id(),
                    text("category"),
                    text("urgency"),
                    uuid_null("patient_id"),
                    text("summary"),
                    uuid("assigned_staff_id"),
                    text("routing_reason"),
                    text("status"),
                    text("notes"),
                    instant("create_time"),
                    instant_null("resolve_time"),
                ],
                &[("assigned_staff_id", "staff")],
            ),
        ];
        for statement in tables {
            manager.create_table(statement).await?;
        }

        let indexes = [
            index("rooms", &["location_id"], false),
            index("duty_shifts", &["staff_id"], false),
            index("duty_shifts", &["start_at"], false),
            index("session_templates", &["clinician_id"], false),
            // GenerateSlots is idempotent because of this index.
            index("slots", &["clinician_id", "start_at"], true),
            index("slots", &["start_at"], false),
            index("absences", &["clinician_id"], false),
            index("appointments", &["patient_id", "start_at"], false),
            index("appointments", &["slot_id"], false),
            index("appointments", &["clinician_id", "start_at"], false),
            index("appointments", &["referral_id"], false),
            index("referrals", &["specialty", "status"], false),
            index("referrals", &["patient_id"], false),
            index("enquiries", &["assigned_staff_id", "status"], false),
        ];
        for statement in indexes {
            manager.create_index(statement).await?;
        }

        manager.create_table(IDEMPOTENCY_KEYS.create_table()).await
    }
}

/// Optimisation runs: proposals and their allocations, the per-specialty run
/// lock (SQLite only; PostgreSQL uses advisory locks), and tentative holds on
/// slots offered to one referral.
#[derive(Debug)]
struct AddOptimisation;

impl MigrationName for AddOptimisation {
    fn name(&self) -> &str {
        "m20261125_000002_add_optimisation"
    }
}

fn double(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).double().not_null().to_owned()
}

fn big_null(column: &str) -> ColumnDef {
    ColumnDef::new(name(column)).big_integer().null().to_owned()
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for AddOptimisation {
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
