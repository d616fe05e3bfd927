//! The BillingService gRPC handlers, one module per resource. Each reads its
//! request with one platform `Reader` (INVALID_ARGUMENT naming every bad
//! field), makes one store call and converts the result back; no SQL and no
//! rules here.

mod budgets;
mod charges;
mod invoices;
mod payments;
mod policy;
mod price_list;

pub use policy::POLICY;

use medsec_proto::billing::v1 as pb;
use medsec_proto::billing::v1::billing_service_server::BillingService;

use crate::store::DatabaseConnection;

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

medsec_platform::grpc_handlers! {
    BillingApi as BillingService, domain = "billing.medsec" {
        create_price_item(pb::CreatePriceItemRequest) -> pb::PriceItem = price_list::create;
        end_price_item(pb::EndPriceItemRequest) -> pb::PriceItem = price_list::end;
        list_price_items(pb::ListPriceItemsRequest) -> pb::ListPriceItemsResponse = price_list::list;
        create_charge(pb::CreateChargeRequest) -> pb::Charge = charges::create;
        list_charges(pb::ListChargesRequest) -> pb::ListChargesResponse = charges::list;
        create_invoice(pb::CreateInvoiceRequest) -> pb::Invoice = invoices::create;
        get_invoice(pb::GetInvoiceRequest) -> pb::Invoice = invoices::get;
        list_invoices(pb::ListInvoicesRequest) -> pb::ListInvoicesResponse = invoices::list;
        add_invoice_line(pb::AddInvoiceLineRequest) -> pb::Invoice = invoices::add_line;
        remove_invoice_line(pb::RemoveInvoiceLineRequest) -> pb::Invoice = invoices::remove_line;
        issue_invoice(pb::IssueInvoiceRequest) -> pb::Invoice = invoices::issue;
        void_invoice(pb::VoidInvoiceRequest) -> pb::Invoice = invoices::void;
        bill_shortfall(pb::BillShortfallRequest) -> pb::Invoice = invoices::bill_shortfall;
        get_aged_debt_report(pb::GetAgedDebtReportRequest) -> pb::AgedDebtReport = invoices::aged_debt_report;
        record_payment(pb::RecordPaymentRequest) -> pb::Invoice = payments::record;
        issue_credit_note(pb::IssueCreditNoteRequest) -> pb::Invoice = invoices::issue_credit_note;
        create_budget(pb::CreateBudgetRequest) -> pb::Budget = budgets::create;
        get_budget(pb::GetBudgetRequest) -> pb::Budget = budgets::get;
        list_budgets(pb::ListBudgetsRequest) -> pb::ListBudgetsResponse = budgets::list;
        record_budget_entry(pb::RecordBudgetEntryRequest) -> pb::Budget = budgets::record_entry;
        list_budget_entries(pb::ListBudgetEntriesRequest) -> pb::ListBudgetEntriesResponse = budgets::list_entries;
    }
}
