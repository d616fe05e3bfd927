//! Invoices: drafts and their lines, issue, void, credit notes, a shortfall
//! re-billed to the patient, lists and the aged-debt report; and an invoice
//! as the API shows it, with its lines, payments and credit notes.

use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::time::{format_civil_date, to_timestamp, today_in_london};
use medsec_platform::{ApiError, Reader};
use medsec_proto::billing::v1 as pb;
use tonic::Request;

use super::BillingApi;
use crate::domain::invoice::read_book_date;
use crate::domain::money::positive_amount;
use crate::domain::{InvoiceStatus, Payer, PaymentMethod, PaymentTerms};
use crate::store::invoices::{self, InvoiceFilter, InvoiceView, LineChange};

pub(super) async fn create(
    api: &BillingApi,
    request: Request<pb::CreateInvoiceRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let patient_id = r.id("patient_id", &request.patient_id);
    let payer = Payer::read_invoiced(&mut r, "payer", request.payer.as_ref());
    let (patient_id, payer) = r.finish((patient_id, payer))?;
    let view = invoices::create(&api.db, patient_id, &payer, key.as_ref(), &actor).await?;
    Ok(to_proto(&view))
}

pub(super) async fn get(
    api: &BillingApi,
    request: Request<pb::GetInvoiceRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
    let mut r = Reader::new();
    let id = r.id("id", &request.get_ref().id);
    let id = r.finish(id)?;
    Ok(to_proto(&invoices::read(&api.db, id, &actor).await?))
}

pub(super) async fn list(
    api: &BillingApi,
    request: Request<pb::ListInvoicesRequest>,
) -> Result<pb::ListInvoicesResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let patient_id = r.optional_id("patient_id", &request.patient_id);
    let status = r.optional_enum("status", request.status);
    let payer_kind = r.optional_enum("payer_kind", request.payer_kind);
    let as_of = r.as_of("as_of", &request.as_of);
    let insurer_name = r.filter("insurer_name", &request.insurer_name, 200);
    let filter = InvoiceFilter {
        status,
        patient_id,
        payer_kind,
        insurer_name,
        overdue_on: request.overdue.then_some(as_of),
    };
    let page = r.page(
        request.page_size,
        &request.page_token,
        &format!("{filter:?}"),
    );
    let page = r.finish(page)?;
    let views = invoices::list(&api.db, &filter, &page, &actor).await?;
    let (invoices, next_page_token) = page.tail(views, |view| keys::id(view.invoice.id), to_proto);
    Ok(pb::ListInvoicesResponse {
        invoices,
        next_page_token,
    })
}

pub(super) async fn add_line(
    api: &BillingApi,
    request: Request<pb::AddInvoiceLineRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
    let pb::AddInvoiceLineRequest {
        invoice_id,
        charge_id,
        etag,
    } = request.get_ref();
    change_line(api, &actor, invoice_id, charge_id, etag, LineChange::Add).await
}

pub(super) async fn remove_line(
    api: &BillingApi,
    request: Request<pb::RemoveInvoiceLineRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
    let pb::RemoveInvoiceLineRequest {
        invoice_id,
        charge_id,
        etag,
    } = request.get_ref();
    change_line(api, &actor, invoice_id, charge_id, etag, LineChange::Remove).await
}

/// Reads the draft, the charge whose line changes and the etag of a line
/// change, and makes it.
async fn change_line(
    api: &BillingApi,
    actor: &Actor,
    invoice_id: &str,
    charge_id: &str,
    etag: &str,
    change: LineChange,
) -> Result<pb::Invoice, ApiError> {
    let mut r = Reader::new();
    let id = r.id("invoice_id", invoice_id);
    let charge_id = r.id("charge_id", charge_id);
    let revision = r.etag("etag", etag);
    let (id, charge_id) = r.finish((id, charge_id))?;
    let view = invoices::change_line(&api.db, id, charge_id, revision, change, actor).await?;
    Ok(to_proto(&view))
}

pub(super) async fn issue(
    api: &BillingApi,
    request: Request<pb::IssueInvoiceRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let revision = r.etag("etag", &request.etag);
    let issue_date = read_book_date(&mut r, "issue_date", &request.issue_date, today_in_london());
    let terms = r.check(
        "payment_terms_days",
        PaymentTerms::new(request.payment_terms_days),
    );
    let (id, issue_date, terms) = r.finish((id, issue_date, terms))?;
    let view = invoices::issue(&api.db, id, revision, issue_date, terms, &actor).await?;
    Ok(to_proto(&view))
}

pub(super) async fn void(
    api: &BillingApi,
    request: Request<pb::VoidInvoiceRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let reason = r.required_line("reason", &request.reason, 500);
    let revision = r.etag("etag", &request.etag);
    let (id, reason) = r.finish((id, reason))?;
    let view = invoices::void(&api.db, id, reason, revision, &actor).await?;
    Ok(to_proto(&view))
}

pub(super) async fn bill_shortfall(
    api: &BillingApi,
    request: Request<pb::BillShortfallRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("invoice_id", &request.invoice_id);
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let id = r.finish(id)?;
    let view = invoices::bill_shortfall(&api.db, id, key.as_ref(), &actor).await?;
    Ok(to_proto(&view))
}

pub(super) async fn issue_credit_note(
    api: &BillingApi,
    request: Request<pb::IssueCreditNoteRequest>,
) -> Result<pb::Invoice, ApiError> {
    let actor = Actor::of(&request);
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
    let view = invoices::credit(&api.db, id, amount_pence, reason, &key, &actor).await?;
    Ok(to_proto(&view))
}

pub(super) async fn aged_debt_report(
    api: &BillingApi,
    request: Request<pb::GetAgedDebtReportRequest>,
) -> Result<pb::AgedDebtReport, ApiError> {
    let actor = Actor::of(&request);
    let mut r = Reader::new();
    let as_of = r.as_of("as_of", &request.get_ref().as_of);
    r.finish(())?;
    let report = invoices::aged_debt(&api.db, as_of, &actor).await?;
    Ok(pb::AgedDebtReport {
        as_of: format_civil_date(as_of),
        not_due_pence: report.not_due,
        days_0_30_pence: report.days_0_30,
        days_31_60_pence: report.days_31_60,
        days_61_90_pence: report.days_61_90,
        days_over_90_pence: report.days_over_90,
        total_pence: report.total(),
        invoice_count: report.invoices,
    })
}

/// An invoice as the API shows it.
pub(super) fn to_proto(view: &InvoiceView) -> pb::Invoice {
    let row = &view.invoice;
    pb::Invoice {
        id: row.id.to_string(),
        number: row.number.clone().unwrap_or_default(),
        status: InvoiceStatus::stored_to_proto(&row.status),
        patient_id: row.patient_id.to_string(),
        payer: Payer::from_stored(
            &row.payer_kind,
            row.insurer_name.as_deref(),
            row.policy_number.as_deref(),
            None,
        )
        .map(|payer| payer.to_proto()),
        lines: view
            .lines
            .iter()
            .map(|line| pb::InvoiceLine {
                id: line.id.to_string(),
                charge_id: line.charge_id.map(|id| id.to_string()).unwrap_or_default(),
                code: line.code.clone(),
                description: line.description.clone(),
                quantity: line.quantity,
                unit_price_pence: line.unit_price_pence,
                vat_rate_basis_points: line.vat_rate_basis_points,
                net_pence: line.net_pence,
                vat_pence: line.vat_pence,
                preauthorisation_code: line.preauthorisation_code.clone().unwrap_or_default(),
            })
            .collect(),
        net_pence: row.net_pence,
        vat_pence: row.vat_pence,
        total_pence: row.total_pence,
        paid_pence: row.paid_pence,
        credited_pence: row.credited_pence,
        balance_pence: row.balance_pence(),
        issue_date: row.issue_date.map(format_civil_date).unwrap_or_default(),
        due_date: row.due_date.map(format_civil_date).unwrap_or_default(),
        payments: view
            .payments
            .iter()
            .map(|payment| pb::Payment {
                id: payment.id.to_string(),
                amount_pence: payment.amount_pence,
                method: PaymentMethod::stored_to_proto(&payment.method),
                paid_on: format_civil_date(payment.paid_on),
                create_time: Some(to_timestamp(payment.create_time)),
            })
            .collect(),
        credit_notes: view
            .credit_notes
            .iter()
            .map(|note| pb::CreditNote {
                id: note.id.to_string(),
                number: note.number.clone(),
                amount_pence: note.amount_pence,
                reason: note.reason.clone(),
                create_time: Some(to_timestamp(note.create_time)),
            })
            .collect(),
        shortfall_of_invoice_id: row
            .shortfall_of_invoice_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        void_reason: row.void_reason.clone().unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        etag: row.revision.to_string(),
    }
}
