//! The first schema: staff and places, the rota, session templates, slots,
//! absences, referrals, appointments with the patients' booking locks,
//! enquiries, and the idempotency keys of creates.

use sea_orm_migration::prelude::*;

use super::{big, boolean, date, date_null, id, index, instant, instant_null, int, name, table};
use super::{text, text_null, uuid, uuid_null};
use crate::store::IDEMPOTENCY_KEYS;

#[derive(Debug)]
pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000001_create_scheduling"
    }
}

// `async_trait` spells the manager's lifetime its own way; naming it trips the
// macro, eliding it trips the lint.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
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
