//! The trail's tables as sea-orm entities: the events (`audit_trail`,
//! append-only) and the head of each chain (`audit_chain_heads`).

/// One event: who touched what, of which patient, how it ended, and its
/// place in its chain.
pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_trail")]
    pub struct Model {
        /// A UUID v7: ordered by time.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The chain it belongs to (`records/patient/0190…`,
        /// `billing/GetInvoice/2026-12-10T14`).
        pub chain: String,
        /// Its position in the chain, from 1 without gaps.
        pub seq: i64,
        /// The hash of the event before it (`GENESIS` for the first).
        pub prev_hash: String,
        /// SHA-256 (hex) of `prev_hash` and every field below.
        pub hash: String,
        /// Whole microseconds.
        pub time: DateTimeUtc,
        /// The service's short name (`records`).
        pub service: String,
        /// The RPC, e.g. `GetPatient`.
        pub method: String,
        /// The verified caller, or `anonymous`.
        pub subject: String,
        /// The caller's roles, comma-separated.
        pub roles: String,
        /// The purpose of use; `break_glass` flags emergency access.
        pub purpose: String,
        /// The reason given for break-glass access.
        pub reason: Option<String>,
        /// `ok`, `denied` or `failed`.
        pub outcome: String,
        pub resource: String,
        pub patient_id: Option<Uuid>,
        /// SHA-256 (hex) of a search's filters.
        pub filter_hash: Option<String>,
        pub trace_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl Model {
        /// The fields the event's hash covers.
        pub fn fields(&self) -> super::super::chain::Fields<'_> {
            super::super::chain::Fields {
                prev_hash: &self.prev_hash,
                id: self.id,
                chain: &self.chain,
                seq: self.seq,
                time: self.time,
                service: &self.service,
                method: &self.method,
                subject: &self.subject,
                roles: &self.roles,
                purpose: &self.purpose,
                reason: self.reason.as_deref(),
                outcome: &self.outcome,
                resource: &self.resource,
                patient_id: self.patient_id,
                filter_hash: self.filter_hash.as_deref(),
                trace_id: &self.trace_id,
            }
        }
    }
}

/// The last event of each chain: locked to append, so a chain's events
/// take their places one at a time.
pub mod head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_chain_heads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain: String,
        /// The `seq` of the chain's last event (0 before the first).
        pub seq: i64,
        /// The `hash` of the chain's last event (`GENESIS` before the
        /// first).
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
