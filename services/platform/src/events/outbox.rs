//! Raising events: written to the outbox in the caller's transaction.

use std::sync::LazyLock;

use prost::Message as _;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait as _};
use tokio::sync::Notify;
use uuid::Uuid;

use super::entities::outbox;
use super::{pb, trace};
use crate::db::rows_per_statement;
use crate::time::to_timestamp;

use pb::envelope::Data;

/// Outbox rows per insert statement (an envelope is a few hundred bytes).
const ROWS_PER_INSERT: usize = rows_per_statement(700);

/// Wakes this process's relay when an event is written (it also looks at
/// intervals, for events written by other processes).
pub(super) static WRITTEN: LazyLock<Notify> = LazyLock::new(Notify::new);

/// One event to raise: what happened (`data`, whose case names the type)
/// and the resource it happened to (`subject`, e.g. `appointments/0193…`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub subject: String,
    pub data: Data,
}

impl Event {
    pub fn new(subject: impl Into<String>, data: Data) -> Self {
        Self {
            subject: subject.into(),
            data,
        }
    }
}

/// The service that raises events of `data`'s kind and their type
/// (`medsec.<service>.<resource>.<verb>`, also the NATS subject).
pub fn type_of(data: &Data) -> (&'static str, &'static str) {
    match data {
        Data::PatientRegistered(_) => ("records", "medsec.records.patient.registered"),
        Data::PatientUpdated(_) => ("records", "medsec.records.patient.updated"),
        Data::PatientArchived(_) => ("records", "medsec.records.patient.archived"),
        Data::SpecimenOverdue(_) => ("records", "medsec.records.specimen.overdue"),
        Data::SpecimenResulted(_) => ("records", "medsec.records.specimen.resulted"),
        Data::ReferralAdded(_) => ("scheduling", "medsec.scheduling.referral.added"),
        Data::ReferralUpdated(_) => ("scheduling", "medsec.scheduling.referral.updated"),
        Data::ReferralRemoved(_) => ("scheduling", "medsec.scheduling.referral.removed"),
        Data::ReferralClockStopped(_) => ("scheduling", "medsec.scheduling.referral.clock_stopped"),
        Data::AppointmentBooked(_) => ("scheduling", "medsec.scheduling.appointment.booked"),
        Data::AppointmentCancelled(_) => ("scheduling", "medsec.scheduling.appointment.cancelled"),
        Data::AppointmentRescheduled(_) => {
            ("scheduling", "medsec.scheduling.appointment.rescheduled")
        }
        Data::AppointmentArrived(_) => ("scheduling", "medsec.scheduling.appointment.arrived"),
        Data::AppointmentFulfilled(_) => ("scheduling", "medsec.scheduling.appointment.fulfilled"),
        Data::AppointmentDidNotAttend(_) => {
            ("scheduling", "medsec.scheduling.appointment.did_not_attend")
        }
        Data::SlotFreed(_) => ("scheduling", "medsec.scheduling.slot.freed"),
        Data::ProposalCommitted(_) => ("scheduling", "medsec.scheduling.proposal.committed"),
        Data::AbsenceRecorded(_) => ("scheduling", "medsec.scheduling.absence.recorded"),
        Data::InvoiceIssued(_) => ("billing", "medsec.billing.invoice.issued"),
        Data::InvoicePaid(_) => ("billing", "medsec.billing.invoice.paid"),
        Data::InvoiceVoided(_) => ("billing", "medsec.billing.invoice.voided"),
    }
}

/// Writes `events` to the outbox in `conn` — the transaction making the
/// change they describe, so they exist if and only if it commits — with
/// the current call's trace context. Events of one subject are relayed in
/// the order given.
pub async fn emit(
    conn: &impl ConnectionTrait,
    events: impl IntoIterator<Item = Event>,
) -> Result<(), DbErr> {
    let (traceparent, tracestate) = trace::current();
    let now = chrono::Utc::now();
    let created_ms = now.timestamp_millis();
    let rows: Vec<outbox::ActiveModel> = events
        .into_iter()
        .map(|event| {
            let (source, kind) = type_of(&event.data);
            let id = Uuid::now_v7();
            let envelope = pb::Envelope {
                id: id.to_string(),
                source: format!("/medsec/{source}"),
                spec_version: "1.0".to_owned(),
                r#type: kind.to_owned(),
                time: Some(to_timestamp(now)),
                subject: event.subject.clone(),
                traceparent: traceparent.clone(),
                tracestate: tracestate.clone(),
                position: 0,
                data: Some(event.data),
            };
            outbox::ActiveModel {
                seq: sea_orm::ActiveValue::NotSet,
                id: sea_orm::ActiveValue::Set(id),
                source: sea_orm::ActiveValue::Set(source.to_owned()),
                kind: sea_orm::ActiveValue::Set(kind.to_owned()),
                subject: sea_orm::ActiveValue::Set(event.subject),
                envelope: sea_orm::ActiveValue::Set(envelope.encode_to_vec()),
                created_ms: sea_orm::ActiveValue::Set(created_ms),
                position: sea_orm::ActiveValue::Set(None),
                relayed_ms: sea_orm::ActiveValue::Set(None),
                attempts: sea_orm::ActiveValue::Set(0),
                next_attempt_ms: sea_orm::ActiveValue::Set(created_ms),
                claimed_by: sea_orm::ActiveValue::Set(None),
                claimed_until_ms: sea_orm::ActiveValue::Set(None),
                last_error: sea_orm::ActiveValue::Set(None),
            }
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        outbox::Entity::insert_many(chunk).exec(conn).await?;
    }
    WRITTEN.notify_one();
    Ok(())
}
