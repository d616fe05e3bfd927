//! The audit trail handler.

use medsec_platform::ApiError;
use medsec_platform::pagination::keys;
use medsec_platform::time::to_timestamp;
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use super::read;
use crate::store::audit;
use crate::store::entities::audit_event::Model as AuditEventRow;

/// Reading the trail is not itself a read of clinical data, so it is not
/// audited (an audit of the audit would grow with every look).
pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListAuditEventsRequest>,
) -> Result<pb::ListAuditEventsResponse, ApiError> {
    let request = request.get_ref();
    let (patient_id, page) =
        read::patient_page(&request.patient_id, request.page_size, &request.page_token)?;
    let rows = audit::list(&api.db, patient_id, &page).await?;
    let (events, next_page_token) = page.tail(rows, |row| keys::id(row.id), to_proto);
    Ok(pb::ListAuditEventsResponse {
        events,
        next_page_token,
    })
}

fn to_proto(row: &AuditEventRow) -> pb::AuditEvent {
    pb::AuditEvent {
        id: row.id.to_string(),
        time: Some(to_timestamp(row.time)),
        actor: row.actor.clone(),
        role: row.role.clone(),
        purpose: row.purpose.clone(),
        action: row.action.clone(),
        resource: row.resource.clone(),
        patient_id: row.patient_id.to_string(),
        trace_id: row.trace_id.clone(),
    }
}
