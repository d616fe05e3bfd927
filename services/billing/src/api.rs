//! The BillingService gRPC handlers: proto in, domain validation, one store
//! call, proto out. No SQL and no rules here.

use chrono::{Datelike as _, NaiveDate};
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::{format_civil_date, parse_civil_date, to_timestamp, today_in_london};
use medsec_platform::{ApiError, FieldViolations, idempotency};
use medsec_proto::billing::v1 as pb;
use medsec_proto::billing::v1::billing_service_server::BillingService;
use prost::Message;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::money::{
    MAX_QUANTITY, MAX_UNIT_PRICE_PENCE, MAX_VAT_RATE_BASIS_POINTS, positive_amount,
};
use crate::domain::payer::kind_of_proto;
use crate::domain::text::{price_code, uuid};
use crate::domain::{FinancialYear, InvoiceStatus, Payer};
use crate::store::RequestKey;
use crate::store::budgets::{self, BudgetFilter, EntryKind, NewEntry};
use crate::store::charges::{self, ChargeFilter, NewCharge};
use crate::store::entities::{budget, budget_entry, charge, price_item};
use crate::store::invoices::{self, InvoiceFilter, InvoiceView, NewPayment};
use crate::store::price_list::{self, NewPriceItem, PriceFilter};
use medsec_platform::text::{optional_line as optional_text, required_line as required_text};

/// Payment terms when IssueInvoice names none.
const DEFAULT_PAYMENT_TERMS_DAYS: i32 = 30;
const MAX_PAYMENT_TERMS_DAYS: i32 = 365;
const DATE_FORM: &str = "must be a date in the form YYYY-MM-DD";

/// BillingService over one database.
#[derive(Debug, Clone)]
pub struct BillingApi {
    db: DatabaseConnection,
}

impl BillingApi {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl BillingService for BillingApi {
    async fn create_price_item(
        &self,
        request: Request<pb::CreatePriceItemRequest>,
    ) -> Reply<pb::PriceItem> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        violations.check(
            "request_id",
            idempotency::validate_request_id(&request.request_id),
        );
        let item = match &request.price_item {
            Some(item) => parse_price_item(item, &mut violations),
            None => {
                violations.add("price_item", "is required");
                None
            }
        };
        violations.into_result()?;
        let item = item.ok_or_else(|| ApiError::invalid("price_item", "is invalid"))?;
        let key = request_key(&request.request_id, || pb::CreatePriceItemRequest {
            request_id: String::new(),
            ..request.clone()
        });
        let created = price_list::create(&self.db, item, key).await?;
        Ok(Response::new(price_item_to_proto(&created)))
    }

    async fn end_price_item(
        &self,
        request: Request<pb::EndPriceItemRequest>,
    ) -> Reply<pb::PriceItem> {
        let request = request.get_ref();
        let mut violations = FieldViolations::default();
        let id = violations.check("id", uuid(&request.id));
        let valid_to = violations.check("valid_to", required_date(&request.valid_to));
        violations.into_result()?;
        let (Some(id), Some(valid_to)) = (id, valid_to) else {
            return Err(ApiError::invalid("id", "is invalid").into());
        };
        let ended = price_list::end(&self.db, id, valid_to).await?;
        Ok(Response::new(price_item_to_proto(&ended)))
    }

    async fn list_price_items(
        &self,
        request: Request<pb::ListPriceItemsRequest>,
    ) -> Reply<pb::ListPriceItemsResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let mut filter = PriceFilter::default();
        if !request.code.is_empty() {
            filter.code = violations.check("code", price_code(&request.code));
        }
        filter.valid_on = violations
            .check("valid_on", optional_date(&request.valid_on))
            .flatten();
        violations.into_result()?;
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &filter.fingerprint(),
        )?;
        let mut rows = price_list::list(&self.db, &filter, &page).await?;
        let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
        Ok(Response::new(pb::ListPriceItemsResponse {
            price_items: rows.iter().map(price_item_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn create_charge(&self, request: Request<pb::CreateChargeRequest>) -> Reply<pb::Charge> {
        let request = request.into_inner();
        let Some(charge) = &request.charge else {
            return Err(ApiError::invalid("charge", "is required").into());
        };
        let mut violations = FieldViolations::default();
        let appointment_id =
            violations.check("charge.appointment_id", uuid(&charge.appointment_id));
        let patient_id = violations.check("charge.patient_id", uuid(&charge.patient_id));
        let code = violations.check("charge.code", price_code(&charge.code));
        let quantity = violations.check(
            "charge.quantity",
            if (1..=MAX_QUANTITY).contains(&charge.quantity) {
                Ok(charge.quantity)
            } else {
                Err("must be from 1 to 1000")
            },
        );
        let service_date =
            violations.check("charge.service_date", required_date(&charge.service_date));
        let payer = Payer::parse(charge.payer.as_ref(), "charge.payer", &mut violations);
        violations.into_result()?;
        let (
            Some(appointment_id),
            Some(patient_id),
            Some(code),
            Some(quantity),
            Some(service_date),
            Some(payer),
        ) = (
            appointment_id,
            patient_id,
            code,
            quantity,
            service_date,
            payer,
        )
        else {
            return Err(ApiError::invalid("charge", "is invalid").into());
        };
        let created = charges::create(
            &self.db,
            NewCharge {
                appointment_id,
                patient_id,
                code,
                quantity,
                service_date,
                payer,
            },
        )
        .await?;
        Ok(Response::new(charge_to_proto(&created)))
    }

    async fn list_charges(
        &self,
        request: Request<pb::ListChargesRequest>,
    ) -> Reply<pb::ListChargesResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let filter = ChargeFilter {
            patient_id: optional_uuid(&mut violations, "patient_id", &request.patient_id),
            appointment_id: optional_uuid(
                &mut violations,
                "appointment_id",
                &request.appointment_id,
            ),
            unbilled_only: request.unbilled_only,
        };
        violations.into_result()?;
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &filter.fingerprint(),
        )?;
        let mut rows = charges::list(&self.db, &filter, &page).await?;
        let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
        Ok(Response::new(pb::ListChargesResponse {
            charges: rows.iter().map(charge_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn create_invoice(
        &self,
        request: Request<pb::CreateInvoiceRequest>,
    ) -> Reply<pb::Invoice> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        violations.check(
            "request_id",
            idempotency::validate_request_id(&request.request_id),
        );
        let patient_id = violations.check("patient_id", uuid(&request.patient_id));
        let payer = Payer::parse(request.payer.as_ref(), "payer", &mut violations);
        if payer == Some(Payer::Nhs) {
            violations.add("payer.kind", "NHS-funded care is never invoiced");
        }
        violations.into_result()?;
        let (Some(patient_id), Some(payer)) = (patient_id, payer) else {
            return Err(ApiError::invalid("payer", "is invalid").into());
        };
        let key = request_key(&request.request_id, || pb::CreateInvoiceRequest {
            request_id: String::new(),
            ..request.clone()
        });
        let created = invoices::create(&self.db, patient_id, &payer, key).await?;
        Ok(Response::new(invoice_to_proto(&created)?))
    }

    async fn get_invoice(&self, request: Request<pb::GetInvoiceRequest>) -> Reply<pb::Invoice> {
        let id = uuid(&request.get_ref().id).map_err(|why| ApiError::invalid("id", why))?;
        let view = invoices::get(&self.db, id).await?;
        Ok(Response::new(invoice_to_proto(&view)?))
    }

    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Reply<pb::ListInvoicesResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let mut filter = InvoiceFilter {
            patient_id: optional_uuid(&mut violations, "patient_id", &request.patient_id),
            ..InvoiceFilter::default()
        };
        filter.status = match pb::InvoiceStatus::try_from(request.status) {
            Ok(status) => status_from_proto(status),
            Err(_) => {
                violations.add("status", "is not a known value");
                None
            }
        };
        filter.payer_kind = match pb::PayerKind::try_from(request.payer_kind) {
            Ok(kind) => kind_of_proto(kind),
            Err(_) => {
                violations.add("payer_kind", "is not a known value");
                None
            }
        };
        if !request.insurer_name.trim().is_empty() {
            filter.insurer_name = Some(request.insurer_name.trim().to_owned());
        }
        let as_of = violations
            .check("as_of", optional_date(&request.as_of))
            .flatten();
        if request.overdue {
            filter.overdue_on = Some(as_of.unwrap_or_else(today_in_london));
        }
        violations.into_result()?;
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &filter.fingerprint(),
        )?;
        let mut views = invoices::list(&self.db, &filter, &page).await?;
        let next_page_token = page.finish(&mut views, |view| view.invoice.id.to_string());
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: views
                .iter()
                .map(invoice_to_proto)
                .collect::<Result<_, _>>()?,
            next_page_token,
        }))
    }

    async fn add_invoice_line(
        &self,
        request: Request<pb::AddInvoiceLineRequest>,
    ) -> Reply<pb::Invoice> {
        let request = request.get_ref();
        let (id, charge_id, revision) =
            line_request(&request.invoice_id, &request.charge_id, &request.etag)?;
        let view = invoices::add_line(&self.db, id, charge_id, revision).await?;
        Ok(Response::new(invoice_to_proto(&view)?))
    }

    async fn remove_invoice_line(
        &self,
        request: Request<pb::RemoveInvoiceLineRequest>,
    ) -> Reply<pb::Invoice> {
        let request = request.get_ref();
        let (id, charge_id, revision) =
            line_request(&request.invoice_id, &request.charge_id, &request.etag)?;
        let view = invoices::remove_line(&self.db, id, charge_id, revision).await?;
        Ok(Response::new(invoice_to_proto(&view)?))
    }

    async fn issue_invoice(&self, request: Request<pb::IssueInvoiceRequest>) -> Reply<pb::Invoice> {
        let request = request.get_ref();
        let mut violations = FieldViolations::default();
        let id = violations.check("id", uuid(&request.id));
        let revision = violations.check("etag", parse_etag(&request.etag));
        let issue_date = violations.check("issue_date", recent_date(&request.issue_date));
        let terms = violations.check(
            "payment_terms_days",
            match request.payment_terms_days {
                0 => Ok(DEFAULT_PAYMENT_TERMS_DAYS),
                days if (1..=MAX_PAYMENT_TERMS_DAYS).contains(&days) => Ok(days),
                _ => Err("must be from 1 to 365 (0 means 30)"),
            },
        );
        violations.into_result()?;
        let (Some(id), Some(revision), Some(issue_date), Some(terms)) =
            (id, revision, issue_date, terms)
        else {
            return Err(ApiError::invalid("id", "is invalid").into());
        };
        let issue_date = issue_date.unwrap_or_else(today_in_london);
        let view = invoices::issue(&self.db, id, revision, issue_date, terms).await?;
        Ok(Response::new(invoice_to_proto(&view)?))
    }

    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Reply<pb::Invoice> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let id = violations.check("invoice_id", uuid(&request.invoice_id));
        let amount = violations.check("amount_pence", positive_amount(request.amount_pence));
        let method = violations.check("method", payment_method(request.method));
        let paid_on = violations.check("paid_on", recent_date(&request.paid_on));
        require_request_id(
            &mut violations,
            &request.request_id,
            "a retried payment must not be recorded twice",
        );
        violations.into_result()?;
        let (Some(id), Some(amount), Some(method), Some(paid_on)) = (id, amount, method, paid_on)
        else {
            return Err(ApiError::invalid("invoice_id", "is invalid").into());
        };
        let key = request_key(&request.request_id, || pb::RecordPaymentRequest {
            request_id: String::new(),
            ..request.clone()
        })
        .ok_or_else(|| ApiError::invalid("request_id", "is required"))?;
        let payment = NewPayment {
            amount_pence: amount,
            method,
            paid_on: paid_on.unwrap_or_else(today_in_london),
        };
        let view = invoices::record_payment(&self.db, id, payment, key).await?;
        Ok(Response::new(invoice_to_proto(&view)?))
    }

    async fn issue_credit_note(
        &self,
        request: Request<pb::IssueCreditNoteRequest>,
    ) -> Reply<pb::Invoice> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let id = violations.check("invoice_id", uuid(&request.invoice_id));
        let amount = violations.check("amount_pence", positive_amount(request.amount_pence));
        let reason = violations.check("reason", required_text(&request.reason, 500));
        require_request_id(
            &mut violations,
            &request.request_id,
            "a retried credit note must not be issued twice",
        );
        violations.into_result()?;
        let (Some(id), Some(amount), Some(reason)) = (id, amount, reason) else {
            return Err(ApiError::invalid("invoice_id", "is invalid").into());
        };
        let key = request_key(&request.request_id, || pb::IssueCreditNoteRequest {
            request_id: String::new(),
            ..request.clone()
        });
        let view = invoices::credit(&self.db, id, amount, reason, key).await?;
        Ok(Response::new(invoice_to_proto(&view)?))
    }

    async fn void_invoice(&self, request: Request<pb::VoidInvoiceRequest>) -> Reply<pb::Invoice> {
        let request = request.get_ref();
        let mut violations = FieldViolations::default();
        let id = violations.check("id", uuid(&request.id));
        let reason = violations.check("reason", required_text(&request.reason, 500));
        let revision = violations.check("etag", parse_etag(&request.etag));
        violations.into_result()?;
        let (Some(id), Some(reason), Some(revision)) = (id, reason, revision) else {
            return Err(ApiError::invalid("id", "is invalid").into());
        };
        let view = invoices::void(&self.db, id, reason, revision).await?;
        Ok(Response::new(invoice_to_proto(&view)?))
    }

    async fn bill_shortfall(
        &self,
        request: Request<pb::BillShortfallRequest>,
    ) -> Reply<pb::Invoice> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let id = violations.check("invoice_id", uuid(&request.invoice_id));
        violations.check(
            "request_id",
            idempotency::validate_request_id(&request.request_id),
        );
        violations.into_result()?;
        let Some(id) = id else {
            return Err(ApiError::invalid("invoice_id", "is invalid").into());
        };
        let key = request_key(&request.request_id, || pb::BillShortfallRequest {
            request_id: String::new(),
            ..request.clone()
        });
        let view = invoices::bill_shortfall(&self.db, id, key).await?;
        Ok(Response::new(invoice_to_proto(&view)?))
    }

    async fn get_aged_debt_report(
        &self,
        request: Request<pb::GetAgedDebtReportRequest>,
    ) -> Reply<pb::AgedDebtReport> {
        let as_of = optional_date(&request.get_ref().as_of)
            .map_err(|why| ApiError::invalid("as_of", why))?
            .unwrap_or_else(today_in_london);
        let report = invoices::aged_debt(&self.db, as_of).await?;
        Ok(Response::new(pb::AgedDebtReport {
            as_of: format_civil_date(as_of),
            not_due_pence: report.not_due,
            days_0_30_pence: report.days_0_30,
            days_31_60_pence: report.days_31_60,
            days_61_90_pence: report.days_61_90,
            days_over_90_pence: report.days_over_90,
            total_pence: report.total(),
            invoice_count: report.invoices,
        }))
    }

    async fn create_budget(&self, request: Request<pb::CreateBudgetRequest>) -> Reply<pb::Budget> {
        let request = request.into_inner();
        let Some(budget) = &request.budget else {
            return Err(ApiError::invalid("budget", "is required").into());
        };
        let mut violations = FieldViolations::default();
        violations.check(
            "request_id",
            idempotency::validate_request_id(&request.request_id),
        );
        let department =
            violations.check("budget.department", required_text(&budget.department, 100));
        let year = violations.check(
            "budget.financial_year",
            FinancialYear::new(budget.financial_year),
        );
        let allocation = violations.check(
            "budget.allocation_pence",
            if (0..=crate::domain::money::MAX_AMOUNT_PENCE).contains(&budget.allocation_pence) {
                Ok(budget.allocation_pence)
            } else {
                Err("must be from 0 to 100000000000 pence")
            },
        );
        violations.into_result()?;
        let (Some(department), Some(year), Some(allocation)) = (department, year, allocation)
        else {
            return Err(ApiError::invalid("budget", "is invalid").into());
        };
        let key = request_key(&request.request_id, || pb::CreateBudgetRequest {
            request_id: String::new(),
            ..request.clone()
        });
        let created = budgets::create(&self.db, department, year, allocation, key).await?;
        Ok(Response::new(budget_to_proto(&created)))
    }

    async fn get_budget(&self, request: Request<pb::GetBudgetRequest>) -> Reply<pb::Budget> {
        let id = uuid(&request.get_ref().id).map_err(|why| ApiError::invalid("id", why))?;
        let budget = budgets::get(&self.db, id).await?;
        Ok(Response::new(budget_to_proto(&budget)))
    }

    async fn list_budgets(
        &self,
        request: Request<pb::ListBudgetsRequest>,
    ) -> Reply<pb::ListBudgetsResponse> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        let mut filter = BudgetFilter::default();
        if !request.department.trim().is_empty() {
            filter.department = Some(request.department.trim().to_owned());
        }
        if request.financial_year != 0 {
            filter.financial_year = violations
                .check("financial_year", FinancialYear::new(request.financial_year))
                .map(FinancialYear::start_year);
        }
        violations.into_result()?;
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &filter.fingerprint(),
        )?;
        let mut rows = budgets::list(&self.db, &filter, &page).await?;
        let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
        Ok(Response::new(pb::ListBudgetsResponse {
            budgets: rows.iter().map(budget_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn record_budget_entry(
        &self,
        request: Request<pb::RecordBudgetEntryRequest>,
    ) -> Reply<pb::Budget> {
        let request = request.into_inner();
        let mut violations = FieldViolations::default();
        violations.check(
            "request_id",
            idempotency::validate_request_id(&request.request_id),
        );
        let budget_id = violations.check("budget_id", uuid(&request.budget_id));
        let override_reason = violations
            .check(
                "override_reason",
                optional_text(&request.override_reason, 500),
            )
            .map(|reason| (!reason.is_empty()).then_some(reason));
        let entry = match &request.entry {
            Some(entry) => parse_entry(entry, &mut violations),
            None => {
                violations.add("entry", "is required");
                None
            }
        };
        violations.into_result()?;
        let (Some(budget_id), Some(override_reason), Some(mut entry)) =
            (budget_id, override_reason, entry)
        else {
            return Err(ApiError::invalid("entry", "is invalid").into());
        };
        entry.override_reason = override_reason;
        let key = request_key(&request.request_id, || pb::RecordBudgetEntryRequest {
            request_id: String::new(),
            ..request.clone()
        });
        let budget = budgets::record_entry(&self.db, budget_id, entry, key).await?;
        Ok(Response::new(budget_to_proto(&budget)))
    }

    async fn list_budget_entries(
        &self,
        request: Request<pb::ListBudgetEntriesRequest>,
    ) -> Reply<pb::ListBudgetEntriesResponse> {
        let request = request.into_inner();
        let budget_id =
            uuid(&request.budget_id).map_err(|why| ApiError::invalid("budget_id", why))?;
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            &budget_id.to_string(),
        )?;
        let mut rows = budgets::list_entries(&self.db, budget_id, &page).await?;
        let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
        Ok(Response::new(pb::ListBudgetEntriesResponse {
            entries: rows.iter().map(entry_to_proto).collect(),
            next_page_token,
        }))
    }
}

/// The key of an idempotent request: its `request_id`, and the request
/// without it (what makes a retry "the same request").
/// Money moves only under an idempotency key: `why` says what a retry
/// without one would do.
fn require_request_id(violations: &mut FieldViolations, request_id: &str, why: &str) {
    if request_id.is_empty() {
        violations.add("request_id", format!("is required: {why}"));
    } else {
        violations.check("request_id", idempotency::validate_request_id(request_id));
    }
}

fn request_key<M: Message>(
    request_id: &str,
    without_key: impl FnOnce() -> M,
) -> Option<RequestKey> {
    (!request_id.is_empty()).then(|| RequestKey {
        request_id: request_id.to_owned(),
        request: without_key().encode_to_vec(),
    })
}

fn required_date(text: &str) -> Result<NaiveDate, &'static str> {
    if text.is_empty() {
        return Err("is required");
    }
    parse_civil_date(text).ok_or(DATE_FORM)
}

/// A date the books may carry: not in the future (an invoice dated ahead
/// would take next year's numbers early) and not before 2000, so every
/// invoice number has a four-digit year.
fn recent_date(text: &str) -> Result<Option<NaiveDate>, String> {
    let Some(date) = optional_date(text)? else {
        return Ok(None);
    };
    if date > today_in_london() {
        return Err("must not be in the future".into());
    }
    if date.year() < 2000 {
        return Err("must not be before 2000-01-01".into());
    }
    Ok(Some(date))
}

fn optional_date(text: &str) -> Result<Option<NaiveDate>, &'static str> {
    if text.is_empty() {
        return Ok(None);
    }
    parse_civil_date(text).map(Some).ok_or(DATE_FORM)
}

fn optional_uuid(violations: &mut FieldViolations, field: &str, text: &str) -> Option<Uuid> {
    if text.is_empty() {
        return None;
    }
    violations.check(field, uuid(text))
}

/// The etag is the revision; empty means "no check".
fn parse_etag(etag: &str) -> Result<Option<i64>, &'static str> {
    if etag.is_empty() {
        return Ok(None);
    }
    etag.parse::<i64>()
        .map(Some)
        .map_err(|_| "is not an etag this API issued")
}

fn line_request(
    invoice_id: &str,
    charge_id: &str,
    etag: &str,
) -> Result<(Uuid, Uuid, Option<i64>), ApiError> {
    let mut violations = FieldViolations::default();
    let id = violations.check("invoice_id", uuid(invoice_id));
    let charge_id = violations.check("charge_id", uuid(charge_id));
    let revision = violations.check("etag", parse_etag(etag));
    violations.into_result()?;
    match (id, charge_id, revision) {
        (Some(id), Some(charge_id), Some(revision)) => Ok((id, charge_id, revision)),
        _ => Err(ApiError::invalid("invoice_id", "is invalid")),
    }
}

fn parse_price_item(
    item: &pb::PriceItem,
    violations: &mut FieldViolations,
) -> Option<NewPriceItem> {
    let code = violations.check("price_item.code", price_code(&item.code));
    let description = violations.check(
        "price_item.description",
        required_text(&item.description, 200),
    );
    let unit_price_pence = violations.check(
        "price_item.unit_price_pence",
        if (0..=MAX_UNIT_PRICE_PENCE).contains(&item.unit_price_pence) {
            Ok(item.unit_price_pence)
        } else {
            Err("must be from 0 to 1000000000 pence")
        },
    );
    let vat = violations.check(
        "price_item.vat_rate_basis_points",
        if (0..=MAX_VAT_RATE_BASIS_POINTS).contains(&item.vat_rate_basis_points) {
            Ok(item.vat_rate_basis_points)
        } else {
            Err("must be from 0 to 10000 basis points")
        },
    );
    let valid_from = violations.check("price_item.valid_from", required_date(&item.valid_from));
    let valid_to = violations.check("price_item.valid_to", optional_date(&item.valid_to));
    if let (Some(from), Some(Some(to))) = (valid_from, valid_to)
        && to < from
    {
        violations.add("price_item.valid_to", "must not be before valid_from");
    }
    Some(NewPriceItem {
        code: code?,
        description: description?,
        unit_price_pence: unit_price_pence?,
        vat_rate_basis_points: vat?,
        valid_from: valid_from?,
        valid_to: valid_to?,
    })
}

fn parse_entry(entry: &pb::BudgetEntry, violations: &mut FieldViolations) -> Option<NewEntry> {
    let kind = violations.check(
        "entry.kind",
        match pb::BudgetEntryKind::try_from(entry.kind) {
            Ok(pb::BudgetEntryKind::Commitment) => Ok(EntryKind::Commitment),
            Ok(pb::BudgetEntryKind::Spend) => Ok(EntryKind::Spend),
            Ok(pb::BudgetEntryKind::Unspecified) => Err("is required"),
            Err(_) => Err("is not a known value"),
        },
    );
    let amount = violations.check("entry.amount_pence", positive_amount(entry.amount_pence));
    let reference = violations.check("entry.reference", required_text(&entry.reference, 200));
    let entry_date = violations.check("entry.entry_date", required_date(&entry.entry_date));
    let settles = if entry.settles_commitment_id.is_empty() {
        Some(None)
    } else {
        violations
            .check(
                "entry.settles_commitment_id",
                uuid(&entry.settles_commitment_id),
            )
            .map(Some)
    };
    if kind == Some(EntryKind::Commitment) && matches!(settles, Some(Some(_))) {
        violations.add(
            "entry.settles_commitment_id",
            "only a spend settles a commitment",
        );
    }
    Some(NewEntry {
        kind: kind?,
        amount_pence: amount?,
        reference: reference?,
        entry_date: entry_date?,
        settles_commitment_id: settles?,
        override_reason: None,
    })
}

fn payment_method(value: i32) -> Result<&'static str, &'static str> {
    match pb::PaymentMethod::try_from(value) {
        Ok(pb::PaymentMethod::Card) => Ok("card"),
        Ok(pb::PaymentMethod::Cash) => Ok("cash"),
        Ok(pb::PaymentMethod::BankTransfer) => Ok("bank_transfer"),
        Ok(pb::PaymentMethod::Cheque) => Ok("cheque"),
        Ok(pb::PaymentMethod::InsurerRemittance) => Ok("insurer_remittance"),
        Ok(pb::PaymentMethod::Unspecified) => Err("is required"),
        Err(_) => Err("is not a known value"),
    }
}

fn payment_method_to_proto(stored: &str) -> pb::PaymentMethod {
    match stored {
        "card" => pb::PaymentMethod::Card,
        "cash" => pb::PaymentMethod::Cash,
        "bank_transfer" => pb::PaymentMethod::BankTransfer,
        "cheque" => pb::PaymentMethod::Cheque,
        "insurer_remittance" => pb::PaymentMethod::InsurerRemittance,
        _ => pb::PaymentMethod::Unspecified,
    }
}

fn status_from_proto(status: pb::InvoiceStatus) -> Option<InvoiceStatus> {
    match status {
        pb::InvoiceStatus::Unspecified => None,
        pb::InvoiceStatus::Draft => Some(InvoiceStatus::Draft),
        pb::InvoiceStatus::Issued => Some(InvoiceStatus::Issued),
        pb::InvoiceStatus::Balanced => Some(InvoiceStatus::Balanced),
        pb::InvoiceStatus::Cancelled => Some(InvoiceStatus::Cancelled),
    }
}

fn status_to_proto(status: InvoiceStatus) -> pb::InvoiceStatus {
    match status {
        InvoiceStatus::Draft => pb::InvoiceStatus::Draft,
        InvoiceStatus::Issued => pb::InvoiceStatus::Issued,
        InvoiceStatus::Balanced => pb::InvoiceStatus::Balanced,
        InvoiceStatus::Cancelled => pb::InvoiceStatus::Cancelled,
    }
}

fn date_text(date: Option<NaiveDate>) -> String {
    date.map(format_civil_date).unwrap_or_default()
}

fn price_item_to_proto(row: &price_item::Model) -> pb::PriceItem {
    pb::PriceItem {
        id: row.id.to_string(),
        code: row.code.clone(),
        description: row.description.clone(),
        unit_price_pence: row.unit_price_pence,
        vat_rate_basis_points: row.vat_rate_basis_points,
        valid_from: format_civil_date(row.valid_from),
        valid_to: date_text(row.valid_to),
        create_time: Some(to_timestamp(row.create_time)),
    }
}

fn stored_payer(
    kind: &str,
    name: Option<&str>,
    policy: Option<&str>,
    preauth: Option<&str>,
) -> Option<pb::Payer> {
    Payer::from_stored(kind, name, policy, preauth).map(|payer| payer.to_proto())
}

fn charge_to_proto(row: &charge::Model) -> pb::Charge {
    pb::Charge {
        id: row.id.to_string(),
        appointment_id: row.appointment_id.to_string(),
        patient_id: row.patient_id.to_string(),
        code: row.code.clone(),
        quantity: row.quantity,
        service_date: format_civil_date(row.service_date),
        payer: stored_payer(
            &row.payer_kind,
            row.insurer_name.as_deref(),
            row.policy_number.as_deref(),
            row.preauthorisation_code.as_deref(),
        ),
        description: row.description.clone(),
        unit_price_pence: row.unit_price_pence,
        vat_rate_basis_points: row.vat_rate_basis_points,
        net_pence: row.net_pence,
        vat_pence: row.vat_pence,
        invoice_id: row.invoice_id.map(|id| id.to_string()).unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
    }
}

fn invoice_to_proto(view: &InvoiceView) -> Result<pb::Invoice, ApiError> {
    let row = &view.invoice;
    let status = InvoiceStatus::from_stored(&row.status)
        .ok_or_else(|| ApiError::internal(format!("invoice {} has a bad status", row.id)))?;
    Ok(pb::Invoice {
        id: row.id.to_string(),
        number: row.number.clone().unwrap_or_default(),
        status: status_to_proto(status) as i32,
        patient_id: row.patient_id.to_string(),
        payer: stored_payer(
            &row.payer_kind,
            row.insurer_name.as_deref(),
            row.policy_number.as_deref(),
            None,
        ),
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
        issue_date: date_text(row.issue_date),
        due_date: date_text(row.due_date),
        payments: view
            .payments
            .iter()
            .map(|payment| pb::Payment {
                id: payment.id.to_string(),
                amount_pence: payment.amount_pence,
                method: payment_method_to_proto(&payment.method) as i32,
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
    })
}

fn budget_to_proto(row: &budget::Model) -> pb::Budget {
    let label = FinancialYear::new(row.financial_year)
        .map(FinancialYear::label)
        .unwrap_or_default();
    pb::Budget {
        id: row.id.to_string(),
        department: row.department.clone(),
        financial_year: row.financial_year,
        financial_year_label: label,
        allocation_pence: row.allocation_pence,
        committed_pence: row.committed_pence,
        spent_pence: row.spent_pence,
        remaining_pence: row.allocation_pence - row.committed_pence - row.spent_pence,
        warning: crate::domain::budget::warning(
            row.allocation_pence,
            row.committed_pence,
            row.spent_pence,
        ),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        etag: row.revision.to_string(),
    }
}

fn entry_to_proto(row: &budget_entry::Model) -> pb::BudgetEntry {
    pb::BudgetEntry {
        id: row.id.to_string(),
        kind: match row.kind.as_str() {
            "commitment" => pb::BudgetEntryKind::Commitment,
            "spend" => pb::BudgetEntryKind::Spend,
            _ => pb::BudgetEntryKind::Unspecified,
        } as i32,
        amount_pence: row.amount_pence,
        reference: row.reference.clone(),
        entry_date: format_civil_date(row.entry_date),
        settles_commitment_id: row
            .settles_commitment_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        settled: row.settled,
        override_reason: row.override_reason.clone().unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
    }
}
