//! The events' tables as sea-orm entities.

/// An event raised by a service: written with its change, relayed later.
pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_outbox")]
    pub struct Model {
        /// The order events were written in; one subject's events are
        /// relayed in this order.
        #[sea_orm(primary_key)]
        pub seq: i64,
        /// The event's id (the envelope's), unique.
        pub id: Uuid,
        /// The raising service's short name (`scheduling`).
        pub source: String,
        /// The event's type, e.g. `medsec.scheduling.appointment.fulfilled`.
        pub kind: String,
        /// The resource it happened to, e.g. `appointments/0193…`.
        pub subject: String,
        /// The encoded `medsec.events.v1.Envelope` (position 0).
        pub envelope: Vec<u8>,
        /// When it was written, Unix milliseconds.
        pub created_ms: i64,
        /// Its place among relayed events, from 1 without gaps; `None` until
        /// relayed.
        pub position: Option<i64>,
        /// When it was relayed, Unix milliseconds.
        pub relayed_ms: Option<i64>,
        /// Failed deliveries so far.
        pub attempts: i32,
        /// Not to be tried before this, Unix milliseconds (backoff).
        pub next_attempt_ms: i64,
        /// The relay holding it, until `claimed_until_ms`.
        pub claimed_by: Option<Uuid>,
        pub claimed_until_ms: Option<i64>,
        /// Why the last delivery failed.
        pub last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An event a consumer has acted on: checked and written in the same
/// transaction as the effect.
pub mod inbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_inbox")]
    pub struct Model {
        /// The consumer's durable name, e.g. `billing-charges`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        /// The event's type.
        pub kind: String,
        /// When the effect committed, Unix milliseconds.
        pub handled_ms: i64,
        /// `done`, or `refused: …` when the effect could not apply (no
        /// price for the charge, say) and was dropped with a warning.
        pub outcome: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
