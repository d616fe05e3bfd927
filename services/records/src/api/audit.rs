//! The audit trail handler.

use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::to_timestamp;
use medsec_proto::records::v1 as pb;
use tonic::Request;

use super::RecordsApi;
use super::context::parse_id;
use crate::store::{audit, patients};

/// Reading the trail is not itself a read of clinical data, so it is not
/// audited (an audit of the audit would grow with every look).
pub(super) async fn list(
    api: &RecordsApi,
    request: Request<pb::ListAuditEventsRequest>,
) -> Result<pb::ListAuditEventsResponse, ApiError> {
    let request = request.into_inner();
    let patient_id = parse_id("patient_id", &request.patient_id)?;
    let page = PageRequest::parse(request.page_size, &request.page_token, &request.patient_id)?;
    patients::find(&api.db, patient_id).await?;
    let mut rows = audit::list(&api.db, patient_id, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListAuditEventsResponse {
        events: rows
            .into_iter()
            .map(|row| pb::AuditEvent {
                id: row.id.to_string(),
                time: Some(to_timestamp(row.time)),
                actor: row.actor,
                role: row.role,
                purpose: row.purpose,
                action: row.action,
                resource: row.resource,
                patient_id: row.patient_id.to_string(),
                trace_id: row.trace_id,
            })
            .collect(),
        next_page_token,
    })
}
