//! The events BillingService raises of invoices, built from the invoice row
//! as the change left it and written to the outbox in the transaction of the
//! change (`medsec.events.v1`).

use medsec_platform::ApiError;
use medsec_platform::events::{self, Event, pb};
use sea_orm::ConnectionTrait;

use super::{Model, subject};

use pb::envelope::Data;

/// Writes `event` with the change being made in `conn`.
pub(super) async fn raise(conn: &impl ConnectionTrait, event: Event) -> Result<(), ApiError> {
    events::emit(conn, [event]).await?;
    Ok(())
}

/// `row` was numbered and sent.
pub(super) fn issued(row: &Model) -> Event {
    Event::new(
        subject(row.id),
        Data::InvoiceIssued(pb::InvoiceIssued {
            invoice_id: row.id.to_string(),
            patient_id: row.patient_id.to_string(),
            number: row.number.clone().unwrap_or_default(),
            total_pence: row.total_pence,
            due_date: row
                .due_date
                .map(|date| date.to_string())
                .unwrap_or_default(),
        }),
    )
}

/// `row` was settled in full.
pub(super) fn paid(row: &Model) -> Event {
    Event::new(
        subject(row.id),
        Data::InvoicePaid(pb::InvoicePaid {
            invoice_id: row.id.to_string(),
            patient_id: row.patient_id.to_string(),
            total_pence: row.total_pence,
        }),
    )
}

/// `row` was voided.
pub(super) fn voided(row: &Model) -> Event {
    Event::new(
        subject(row.id),
        Data::InvoiceVoided(pb::InvoiceVoided {
            invoice_id: row.id.to_string(),
            patient_id: row.patient_id.to_string(),
            reason: row.void_reason.clone().unwrap_or_default(),
        }),
    )
}
