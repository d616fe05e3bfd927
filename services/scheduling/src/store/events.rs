//! The events SchedulingService raises, built from its rows and written to
//! the outbox in the transaction of the change (`medsec.events.v1`).

use medsec_platform::ApiError;
use medsec_platform::events::{self, Event, pb};
use medsec_platform::time::to_timestamp;
use sea_orm::{ConnectionTrait, EntityTrait as _};

use super::entities::{appointment, referral, slot};
use crate::domain::referral::Funding;

use pb::envelope::Data;

/// Writes `events` with the change being made in `conn`.
pub(crate) async fn raise(
    conn: &impl ConnectionTrait,
    events: impl IntoIterator<Item = Event>,
) -> Result<(), ApiError> {
    events::emit(conn, events).await?;
    Ok(())
}

fn timestamp(epoch: i64) -> Option<prost_types::Timestamp> {
    chrono::DateTime::from_timestamp(epoch, 0).map(to_timestamp)
}

/// What every appointment event says of `row`, in slot `slot`, funded as
/// `funding` says.
pub(crate) fn facts(
    row: &appointment::Model,
    slot: &slot::Model,
    funding: &Funding,
) -> pb::AppointmentFacts {
    pb::AppointmentFacts {
        appointment_id: row.id.to_string(),
        patient_id: row.patient_id.to_string(),
        referral_id: row.referral_id.map(|id| id.to_string()).unwrap_or_default(),
        slot_id: row.slot_id.to_string(),
        clinician_id: row.clinician_id.to_string(),
        specialty: slot.specialty.clone(),
        kind: slot.kind.clone(),
        start_time: timestamp(row.start_at),
        end_time: timestamp(row.end_at),
        funding: Some(funding_event(funding)),
    }
}

fn funding_event(funding: &Funding) -> pb::Funding {
    match funding {
        Funding::Insurer {
            name,
            policy_number,
            preauthorisation_code,
        } => pb::Funding {
            kind: funding.kind().to_owned(),
            insurer_name: name.clone(),
            policy_number: policy_number.clone(),
            preauthorisation_code: preauthorisation_code.clone().unwrap_or_default(),
        },
        Funding::Nhs | Funding::SelfPay => pb::Funding {
            kind: funding.kind().to_owned(),
            ..Default::default()
        },
    }
}

/// Who pays for appointment `row`: its referral's funding, or the NHS.
pub(crate) async fn funding_of(
    conn: &impl ConnectionTrait,
    row: &appointment::Model,
) -> Result<Funding, ApiError> {
    let Some(referral_id) = row.referral_id else {
        return Ok(Funding::Nhs);
    };
    Ok(referral::Entity::find_by_id(referral_id)
        .one(conn)
        .await?
        .map(|referral| referral.funding())
        .unwrap_or_default())
}

/// An appointment event of `row` as it now is, reading its slot.
pub(crate) async fn appointment_event(
    conn: &impl ConnectionTrait,
    row: &appointment::Model,
    data: impl FnOnce(pb::AppointmentFacts) -> Data,
) -> Result<Event, ApiError> {
    let slot = slot_of(conn, row.slot_id).await?;
    let funding = funding_of(conn, row).await?;
    Ok(Event::new(
        format!("appointments/{}", row.id),
        data(facts(row, &slot, &funding)),
    ))
}

async fn slot_of(conn: &impl ConnectionTrait, id: uuid::Uuid) -> Result<slot::Model, ApiError> {
    slot::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::internal(format!("slot {id} of an appointment is missing")))
}

/// A place in slot `slot_id` was freed by appointment `appointment_id`.
pub(crate) async fn slot_freed(
    conn: &impl ConnectionTrait,
    slot_id: uuid::Uuid,
    appointment_id: uuid::Uuid,
) -> Result<Event, ApiError> {
    let slot = slot_of(conn, slot_id).await?;
    Ok(Event::new(
        format!("slots/{slot_id}"),
        Data::SlotFreed(pb::SlotFreed {
            slot_id: slot.id.to_string(),
            clinician_id: slot.clinician_id.to_string(),
            specialty: slot.specialty.clone(),
            kind: slot.kind.clone(),
            start_time: timestamp(slot.start_at),
            end_time: timestamp(slot.end_at),
            places_free: (slot.capacity - slot.booked).max(0),
            appointment_id: appointment_id.to_string(),
        }),
    ))
}

pub(crate) fn referral_added(row: &referral::Model) -> Event {
    Event::new(
        format!("referrals/{}", row.id),
        Data::ReferralAdded(pb::ReferralAdded {
            referral_id: row.id.to_string(),
            patient_id: row.patient_id.to_string(),
            specialty: row.specialty.clone(),
            priority: row.priority.clone(),
            clock_start: row.clock_start.to_string(),
        }),
    )
}

pub(crate) fn referral_updated(row: &referral::Model, paths: Vec<String>) -> Event {
    Event::new(
        format!("referrals/{}", row.id),
        Data::ReferralUpdated(pb::ReferralUpdated {
            referral_id: row.id.to_string(),
            patient_id: row.patient_id.to_string(),
            paths,
        }),
    )
}

/// A removal, and the clock stop it means (the pathway ends today).
pub(crate) fn referral_removed(row: &referral::Model, reason: &str) -> [Event; 2] {
    let subject = format!("referrals/{}", row.id);
    [
        Event::new(
            subject.clone(),
            Data::ReferralRemoved(pb::ReferralRemoved {
                referral_id: row.id.to_string(),
                patient_id: row.patient_id.to_string(),
                reason: reason.to_owned(),
            }),
        ),
        Event::new(
            subject,
            Data::ReferralClockStopped(pb::ReferralClockStopped {
                referral_id: row.id.to_string(),
                patient_id: row.patient_id.to_string(),
                stop_date: medsec_platform::time::today_in_london().to_string(),
                reason: reason.to_owned(),
            }),
        ),
    ]
}
