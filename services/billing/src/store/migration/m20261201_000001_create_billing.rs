//! The first schema of BillingService: every table, the indexes and CHECKs
//! that hold its integrity (one charge per (appointment, code), unique
//! document numbers, one budget per department and year, no negative amount,
//! no balance below zero), and the idempotency keys.

use sea_orm_migration::prelude::*;

use crate::store::IDEMPOTENCY_KEYS;

#[derive(Debug)]
pub(super) struct CreateBilling;

impl MigrationName for CreateBilling {
    fn name(&self) -> &str {
        "m20261201_000001_create_billing"
    }
}

fn id() -> ColumnDef {
    ColumnDef::new("id")
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

fn col(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).not_null().to_owned()
}

fn nullable(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).null().to_owned()
}

fn pence(name: &'static str) -> ColumnDef {
    col(name).big_integer().to_owned()
}

fn time(name: &'static str) -> ColumnDef {
    col(name).timestamp_with_time_zone().to_owned()
}

// `async_trait` spells the manager's lifetime its own way; naming it trips the
// macro, eliding it trips the lint.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateBilling {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table("price_items")
                .col(id())
                .col(col("code").string_len(32))
                .col(col("description").string())
                .col(pence("unit_price_pence"))
                .col(col("vat_rate_basis_points").integer())
                .col(col("valid_from").date())
                .col(nullable("valid_to").date())
                .col(time("create_time"))
                .check(Expr::cust("unit_price_pence >= 0"))
                .check(Expr::cust("vat_rate_basis_points BETWEEN 0 AND 10000"))
                .check(Expr::cust("valid_to IS NULL OR valid_to >= valid_from"))
                .to_owned(),
            // One row per code, written first by every change to the code's
            // versions, so overlap checks of one code run one at a time.
            Table::create()
                .table("price_codes")
                .col(col("code").string_len(32).primary_key())
                .col(col("revision").big_integer())
                .to_owned(),
            Table::create()
                .table("charges")
                .col(id())
                .col(col("appointment_id").uuid())
                .col(col("patient_id").uuid())
                .col(col("code").string_len(32))
                .col(col("price_item_id").uuid())
                .col(col("description").string())
                .col(col("quantity").integer())
                .col(pence("unit_price_pence"))
                .col(col("vat_rate_basis_points").integer())
                .col(pence("net_pence"))
                .col(pence("vat_pence"))
                .col(col("service_date").date())
                .col(col("payer_kind").string_len(16))
                .col(col("payer_key").string())
                .col(nullable("insurer_name").string())
                .col(nullable("policy_number").string())
                .col(nullable("preauthorisation_code").string())
                .col(nullable("invoice_id").uuid())
                .col(time("create_time"))
                .check(Expr::cust(
                    "quantity > 0 AND net_pence >= 0 AND vat_pence >= 0",
                ))
                // NHS-funded care is never invoiced.
                .check(Expr::cust("payer_kind <> 'nhs' OR invoice_id IS NULL"))
                .to_owned(),
            Table::create()
                .table("invoices")
                .col(id())
                .col(nullable("number").string_len(32))
                .col(col("status").string_len(16))
                .col(col("patient_id").uuid())
                .col(col("payer_kind").string_len(16))
                .col(col("payer_key").string())
                .col(nullable("insurer_name").string())
                .col(nullable("policy_number").string())
                .col(pence("net_pence"))
                .col(pence("vat_pence"))
                .col(pence("total_pence"))
                .col(pence("paid_pence"))
                .col(pence("credited_pence"))
                .col(nullable("issue_date").date())
                .col(nullable("due_date").date())
                .col(nullable("shortfall_of_invoice_id").uuid())
                .col(nullable("void_reason").text())
                .col(time("create_time"))
                .col(time("update_time"))
                .col(col("revision").big_integer())
                .check(Expr::cust(
                    "status IN ('draft', 'issued', 'balanced', 'cancelled')",
                ))
                .check(Expr::cust("total_pence = net_pence + vat_pence"))
                .check(Expr::cust(
                    "paid_pence >= 0 AND credited_pence >= 0 \
                     AND paid_pence + credited_pence <= total_pence",
                ))
                .check(Expr::cust(
                    "(status = 'balanced') = (number IS NOT NULL AND status <> 'cancelled' \
                     AND paid_pence + credited_pence = total_pence)",
                ))
                .check(Expr::cust("payer_kind <> 'nhs'"))
                .to_owned(),
            Table::create()
                .table("invoice_lines")
                .col(id())
                .col(col("invoice_id").uuid())
                .col(nullable("charge_id").uuid())
                .col(col("code").string_len(32))
                .col(col("description").string())
                .col(col("quantity").integer())
                .col(pence("unit_price_pence"))
                .col(col("vat_rate_basis_points").integer())
                .col(pence("net_pence"))
                .col(pence("vat_pence"))
                .col(nullable("preauthorisation_code").string())
                .to_owned(),
            Table::create()
                .table("payments")
                .col(id())
                .col(col("invoice_id").uuid())
                .col(pence("amount_pence"))
                .col(col("method").string_len(32))
                .col(col("paid_on").date())
                .col(time("create_time"))
                .check(Expr::cust("amount_pence > 0"))
                .to_owned(),
            Table::create()
                .table("credit_notes")
                .col(id())
                .col(col("number").string_len(32).unique_key())
                .col(col("invoice_id").uuid())
                .col(pence("amount_pence"))
                .col(col("reason").text())
                .col(time("create_time"))
                .check(Expr::cust("amount_pence > 0"))
                .to_owned(),
            // The last number used per series and year. Issuing bumps it with
            // a guarded UPDATE inside the issuing transaction: concurrent
            // issues queue on the row, a failed one rolls its number back.
            Table::create()
                .table("document_counters")
                .col(col("series").string_len(8))
                .col(col("year").integer())
                .col(col("last").big_integer())
                .primary_key(Index::create().col("series").col("year"))
                .to_owned(),
            Table::create()
                .table("budgets")
                .col(id())
                .col(col("department").string())
                .col(col("financial_year").integer())
                .col(pence("allocation_pence"))
                .col(pence("committed_pence"))
                .col(pence("spent_pence"))
                .col(time("create_time"))
                .col(time("update_time"))
                .col(col("revision").big_integer())
                .check(Expr::cust(
                    "allocation_pence >= 0 AND committed_pence >= 0 AND spent_pence >= 0",
                ))
                .to_owned(),
            Table::create()
                .table("budget_entries")
                .col(id())
                .col(col("budget_id").uuid())
                .col(col("kind").string_len(16))
                .col(pence("amount_pence"))
                .col(col("reference").string())
                .col(col("entry_date").date())
                .col(nullable("settles_commitment_id").uuid())
                .col(col("settled").boolean())
                .col(nullable("override_reason").text())
                .col(time("create_time"))
                .check(Expr::cust("amount_pence > 0"))
                .to_owned(),
        ];
        for table in tables {
            manager.create_table(table).await?;
        }

        let indexes = [
            (
                "price_items_code_from",
                "price_items",
                &["code", "valid_from"][..],
                true,
            ),
            (
                "charges_appointment_code",
                "charges",
                &["appointment_id", "code"],
                true,
            ),
            (
                "charges_patient_payer",
                "charges",
                &["patient_id", "payer_key"],
                false,
            ),
            ("charges_invoice", "charges", &["invoice_id"], false),
            ("invoices_number", "invoices", &["number"], true),
            ("invoices_patient", "invoices", &["patient_id"], false),
            (
                "invoices_status_due",
                "invoices",
                &["status", "due_date"],
                false,
            ),
            (
                "invoice_lines_invoice",
                "invoice_lines",
                &["invoice_id"],
                false,
            ),
            ("payments_invoice", "payments", &["invoice_id"], false),
            (
                "credit_notes_invoice",
                "credit_notes",
                &["invoice_id"],
                false,
            ),
            (
                "budgets_department_year",
                "budgets",
                &["department", "financial_year"],
                true,
            ),
            (
                "budget_entries_budget",
                "budget_entries",
                &["budget_id"],
                false,
            ),
        ];
        for (name, table, columns, unique) in indexes {
            let mut index = Index::create();
            index.name(name).table(table);
            for &column in columns {
                index.col(column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager.create_table(IDEMPOTENCY_KEYS.create_table()).await
    }
}
