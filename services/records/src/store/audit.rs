//! Reading the suite's audit trail for one patient (ListAuditEvents). The
//! trail itself is the platform's (`medsec_platform::audit`): every store
//! function here appends its events there, in the transaction of the
//! access. Records' own first trail, `audit_events`, was copied into it by
//! migration 3 and is kept, append-only, as it was.

use medsec_platform::ApiError;
use medsec_platform::audit::entities::event::Model;
use medsec_platform::audit::{self, Access, Actor};
use medsec_platform::pagination::PageRequest;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::patients;

/// One page of the events naming a patient, from every service, oldest
/// first. Reading the trail is itself an access to the patient's record,
/// audited in the same transaction (after the read, so a page never shows
/// the look that read it).
pub async fn list(
    db: &DatabaseConnection,
    patient_id: Uuid,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<Model>, ApiError> {
    audit::read(db, actor, async |txn| {
        patients::find(txn, patient_id).await?;
        let rows = audit::events_of_patient(txn, patient_id, page).await?;
        let access = Access::patient(format!("patients/{patient_id}/auditEvents"), patient_id);
        Ok((rows, [access]))
    })
    .await
}
