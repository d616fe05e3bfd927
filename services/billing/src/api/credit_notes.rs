//! Credit notes: numbered reductions of an issued invoice's balance, issued
//! once per `request_id`, which is required because money moves.

use medsec_platform::{ApiError, Reader};
use medsec_proto::billing::v1 as pb;
use tonic::Request;

use super::BillingApi;
use super::invoices::to_proto;
use crate::domain::money::positive_amount;
use crate::store::invoices;

pub(super) async fn issue(
    api: &BillingApi,
    request: Request<pb::IssueCreditNoteRequest>,
) -> Result<pb::Invoice, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("invoice_id", &request.invoice_id);
    let amount_pence = r.check("amount_pence", positive_amount(request.amount_pence));
    let reason = r.required_line("reason", &request.reason, 500);
    let key = r.required_request_key(
        &request.request_id,
        &request,
        |q| q.request_id.clear(),
        "a retried credit note must not be issued twice",
    );
    let (id, amount_pence, reason, key) = r.finish((id, amount_pence, reason, key))?;
    let view = invoices::credit(&api.db, id, amount_pence, reason, &key).await?;
    Ok(to_proto(&view))
}
