//! Payments of issued invoices: recorded once per `request_id`, which is
//! required because money moves.

use medsec_platform::audit::Actor;
use medsec_platform::time::today_in_london;
use medsec_platform::{ApiError, Reader};
use medsec_proto::billing::v1 as pb;
use tonic::Request;

use super::BillingApi;
use super::invoices::to_proto;
use crate::domain::PaymentMethod;
use crate::domain::invoice::read_book_date;
use crate::domain::money::positive_amount;
use crate::store::invoices::{self, NewPayment};

pub(super) async fn record(
    api: &BillingApi,
    request: Request<pb::RecordPaymentRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("invoice_id", &request.invoice_id);
    let amount_pence = r.check("amount_pence", positive_amount(request.amount_pence));
    let method = r.enumerated::<PaymentMethod>("method", request.method);
    let paid_on = read_book_date(&mut r, "paid_on", &request.paid_on, today_in_london());
    let key = r.required_request_key(
        &request.request_id,
        &request,
        |q| q.request_id.clear(),
        "a retried payment must not be recorded twice",
    );
    let (id, amount_pence, method, paid_on, key) =
        r.finish((id, amount_pence, method, paid_on, key))?;
    let payment = NewPayment {
        amount_pence,
        method,
        paid_on,
    };
    let view = invoices::record_payment(&api.db, id, payment, &key, &actor).await?;
    Ok(to_proto(&view))
}
