//! The audit trail handler.

use medsec_platform::ApiError;
use medsec_platform::audit::entities::event::Model as EventRow;
use medsec_platform::audit::{Actor, Outcome};
use medsec_platform::pagination::keys;
use medsec_platform::time::to_timestamp;
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use super::read;
use crate::store::audit;

/// A patient's events from every service; the read is audited.
pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListAuditEventsRequest>,
) -> Result<pb::ListAuditEventsResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.get_ref();
    let (patient_id, page) =
        read::patient_page(&request.patient_id, request.page_size, &request.page_token)?;
    let rows = audit::list(&api.db, patient_id, &page, &actor).await?;
    let (events, next_page_token) = page.tail(rows, |row| keys::id(row.id), to_proto);
    Ok(pb::ListAuditEventsResponse {
        events,
        next_page_token,
    })
}

fn to_proto(row: &EventRow) -> pb::AuditEvent {
    pb::AuditEvent {
        id: row.id.to_string(),
        time: Some(to_timestamp(row.time)),
        actor: row.subject.clone(),
        role: row.roles.clone(),
        purpose: match &row.reason {
            Some(reason) => format!("{}: {reason}", row.purpose),
            None => row.purpose.clone(),
        },
        action: row.method.clone(),
        resource: row.resource.clone(),
        patient_id: row.patient_id.map(|id| id.to_string()).unwrap_or_default(),
        trace_id: row.trace_id.clone(),
        outcome: match Outcome::parse(&row.outcome) {
            Some(Outcome::Ok) => pb::AuditOutcome::Ok,
            Some(Outcome::Denied) => pb::AuditOutcome::Denied,
            Some(Outcome::Failed) => pb::AuditOutcome::Failed,
            None => pb::AuditOutcome::Unspecified,
        } as i32,
    }
}
