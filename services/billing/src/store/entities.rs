//! Billing's tables as sea-orm entities.

/// Versions of price-list items.
pub mod price_item {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "price_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub code: String,
        pub description: String,
        pub unit_price_pence: i64,
        pub vat_rate_basis_points: i32,
        pub valid_from: Date,
        pub valid_to: Option<Date>,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Charges for encounters, priced when made.
pub mod charge {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "charges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Unique with `code`: the idempotency key of CreateCharge.
        pub appointment_id: Uuid,
        pub patient_id: Uuid,
        pub code: String,
        pub price_item_id: Uuid,
        pub description: String,
        pub quantity: i32,
        pub unit_price_pence: i64,
        pub vat_rate_basis_points: i32,
        pub net_pence: i64,
        pub vat_pence: i64,
        pub service_date: Date,
        pub payer_kind: String,
        pub payer_key: String,
        pub insurer_name: Option<String>,
        pub policy_number: Option<String>,
        pub preauthorisation_code: Option<String>,
        /// The invoice holding it; set and cleared only by guarded UPDATEs.
        pub invoice_id: Option<Uuid>,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Invoices; totals are kept in step with their lines by the store.
pub mod invoice {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "invoices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Unique; set once, in the issuing transaction.
        pub number: Option<String>,
        pub status: String,
        pub patient_id: Uuid,
        pub payer_kind: String,
        pub payer_key: String,
        pub insurer_name: Option<String>,
        pub policy_number: Option<String>,
        pub net_pence: i64,
        pub vat_pence: i64,
        pub total_pence: i64,
        pub paid_pence: i64,
        pub credited_pence: i64,
        pub issue_date: Option<Date>,
        pub due_date: Option<Date>,
        pub shortfall_of_invoice_id: Option<Uuid>,
        pub void_reason: Option<String>,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        /// Bumped by every change; the etag.
        pub revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// What is still owed (`domain::money::balance`).
        pub fn balance_pence(&self) -> i64 {
            crate::domain::money::balance(self.total_pence, self.paid_pence, self.credited_pence)
        }
    }
}

/// Lines of invoices, copied from charges (or a shortfall).
pub mod invoice_line {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "invoice_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub invoice_id: Uuid,
        pub charge_id: Option<Uuid>,
        pub code: String,
        pub description: String,
        pub quantity: i32,
        pub unit_price_pence: i64,
        pub vat_rate_basis_points: i32,
        pub net_pence: i64,
        pub vat_pence: i64,
        pub preauthorisation_code: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Payments received against invoices.
pub mod payment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub invoice_id: Uuid,
        pub amount_pence: i64,
        pub method: String,
        pub paid_on: Date,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Numbered credit notes against issued invoices.
pub mod credit_note {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "credit_notes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub number: String,
        pub invoice_id: Uuid,
        pub amount_pence: i64,
        pub reason: String,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Department budgets per financial year.
pub mod budget {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "budgets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub department: String,
        pub financial_year: i32,
        pub allocation_pence: i64,
        pub committed_pence: i64,
        pub spent_pence: i64,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        pub revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Commitments and spend recorded against budgets.
pub mod budget_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "budget_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub budget_id: Uuid,
        /// `commitment` or `spend`.
        pub kind: String,
        pub amount_pence: i64,
        pub reference: String,
        pub entry_date: Date,
        pub settles_commitment_id: Option<Uuid>,
        pub settled: bool,
        pub override_reason: Option<String>,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
