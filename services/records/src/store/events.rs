//! The events RecordsService raises, built from its rows and written to the
//! outbox in the transaction of the change (`medsec.events.v1`).

use medsec_platform::ApiError;
use medsec_platform::events::{self, Event, pb};
use medsec_platform::time::to_timestamp;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::entities::specimen;
use super::{patients, specimens};

use pb::envelope::Data;

/// Writes `events` with the change being made in `conn`.
pub(crate) async fn raise(
    conn: &impl ConnectionTrait,
    events: impl IntoIterator<Item = Event>,
) -> Result<(), ApiError> {
    events::emit(conn, events).await?;
    Ok(())
}

/// Patient `id` was registered.
pub(crate) fn patient_registered(id: Uuid) -> Event {
    Event::new(
        patients::resource(id),
        Data::PatientRegistered(pb::PatientRegistered {
            patient_id: id.to_string(),
        }),
    )
}

/// The fields `paths` of patient `id` were changed.
pub(crate) fn patient_updated(id: Uuid, paths: Vec<String>) -> Event {
    Event::new(
        patients::resource(id),
        Data::PatientUpdated(pb::PatientUpdated {
            patient_id: id.to_string(),
            paths,
        }),
    )
}

/// Patient `id` was archived.
pub(crate) fn patient_archived(id: Uuid) -> Event {
    Event::new(
        patients::resource(id),
        Data::PatientArchived(pb::PatientArchived {
            patient_id: id.to_string(),
        }),
    )
}

/// `row`'s result was recorded.
pub(crate) fn specimen_resulted(row: &specimen::Model) -> Event {
    Event::new(
        specimens::resource(row.id),
        Data::SpecimenResulted(pb::SpecimenResulted {
            specimen_id: row.id.to_string(),
            patient_id: row.patient_id.to_string(),
            test_code: row.test_code.clone(),
            abnormal: row.abnormal,
        }),
    )
}

/// `row` is past its due time with the lab.
pub(crate) fn specimen_overdue(row: &specimen::Model) -> Event {
    Event::new(
        specimens::resource(row.id),
        Data::SpecimenOverdue(pb::SpecimenOverdue {
            specimen_id: row.id.to_string(),
            patient_id: row.patient_id.to_string(),
            test_code: row.test_code.clone(),
            due_time: row.due_time.map(to_timestamp),
        }),
    )
}
