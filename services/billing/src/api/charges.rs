//! Charges for encounters: priced and recorded once per (appointment, code),
//! and listed.

use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::time::{format_civil_date, to_timestamp};
use medsec_platform::{ApiError, Reader};
use medsec_proto::billing::v1 as pb;
use tonic::Request;

use super::BillingApi;
use crate::domain::{Payer, money, price};
use crate::store::charges::{self, ChargeFilter, NewCharge};
use crate::store::entities::charge;

pub(super) async fn create(
    api: &BillingApi,
    request: Request<pb::CreateChargeRequest>,
) -> Result<pb::Charge, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let charge = r.message("charge", request.charge.as_ref())?;
    let charge = read_charge(&mut r, charge);
    let charge = r.finish(charge)?;
    Ok(to_proto(&charges::create(&api.db, charge, &actor).await?))
}

fn read_charge(r: &mut Reader, charge: &pb::Charge) -> Option<NewCharge> {
    let appointment_id = r.id("charge.appointment_id", &charge.appointment_id);
    let patient_id = r.id("charge.patient_id", &charge.patient_id);
    let code = r.check("charge.code", price::price_code(&charge.code));
    let quantity = r.check("charge.quantity", money::quantity(charge.quantity));
    let service_date = r.date("charge.service_date", &charge.service_date);
    let payer = Payer::read(r, "charge.payer", charge.payer.as_ref());
    Some(NewCharge {
        appointment_id: appointment_id?,
        patient_id: patient_id?,
        code: code?,
        quantity: quantity?,
        service_date: service_date?,
        payer: payer?,
    })
}

pub(super) async fn list(
    api: &BillingApi,
    request: Request<pb::ListChargesRequest>,
) -> Result<pb::ListChargesResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let filter = ChargeFilter {
        patient_id: r.optional_id("patient_id", &request.patient_id),
        appointment_id: r.optional_id("appointment_id", &request.appointment_id),
        unbilled_only: request.unbilled_only,
    };
    let page = r.page(
        request.page_size,
        &request.page_token,
        &format!("{filter:?}"),
    );
    let page = r.finish(page)?;
    let rows = charges::list(&api.db, &filter, &page, &actor).await?;
    let (charges, next_page_token) = page.tail(rows, |row| keys::id(row.id), to_proto);
    Ok(pb::ListChargesResponse {
        charges,
        next_page_token,
    })
}

fn to_proto(row: &charge::Model) -> pb::Charge {
    pb::Charge {
        id: row.id.to_string(),
        appointment_id: row.appointment_id.to_string(),
        patient_id: row.patient_id.to_string(),
        code: row.code.clone(),
        quantity: row.quantity,
        service_date: format_civil_date(row.service_date),
        payer: Payer::from_stored(
            &row.payer_kind,
            row.insurer_name.as_deref(),
            row.policy_number.as_deref(),
            row.preauthorisation_code.as_deref(),
        )
        .map(|payer| payer.to_proto()),
        description: row.description.clone(),
        unit_price_pence: row.unit_price_pence,
        vat_rate_basis_points: row.vat_rate_basis_points,
        net_pence: row.net_pence,
        vat_pence: row.vat_pence,
        invoice_id: row.invoice_id.map(|id| id.to_string()).unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
    }
}
