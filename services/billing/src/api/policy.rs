//! Who may call each BillingService RPC (the README's role table). Billing
//! clerks raise charges, invoices and payments; voids, credit notes and
//! budget overrides need a finance approver; the price list is
//! configuration, kept by admins.

use medsec_platform::auth::Role;
use medsec_platform::auth::Role::{Admin, BillingClerk, FinanceApprover, Secretary, Service};
use medsec_platform::auth::policy::{Rule, ServicePolicy};

const FINANCE: &[Role] = &[BillingClerk, FinanceApprover];

/// BillingService's rows of the policy table.
pub const POLICY: ServicePolicy = ServicePolicy {
    service: crate::SERVICE_NAME,
    rules: &[
        Rule::other("CreatePriceItem", &[Admin]),
        Rule::other("EndPriceItem", &[Admin]),
        Rule::other(
            "ListPriceItems",
            &[BillingClerk, FinanceApprover, Secretary, Admin],
        ),
        Rule::patient("CreateCharge", &[BillingClerk, Service]),
        Rule::patient("ListCharges", FINANCE),
        Rule::patient("CreateInvoice", &[BillingClerk]),
        Rule::patient("GetInvoice", FINANCE),
        Rule::patient("ListInvoices", FINANCE),
        Rule::patient("AddInvoiceLine", &[BillingClerk]),
        Rule::patient("RemoveInvoiceLine", &[BillingClerk]),
        Rule::patient("IssueInvoice", &[BillingClerk]),
        Rule::patient("RecordPayment", &[BillingClerk]),
        Rule::patient("IssueCreditNote", &[FinanceApprover]),
        Rule::patient("VoidInvoice", &[FinanceApprover]),
        Rule::patient("BillShortfall", &[BillingClerk]),
        Rule::patient("GetAgedDebtReport", FINANCE),
        Rule::other("CreateBudget", &[FinanceApprover]),
        Rule::other("GetBudget", FINANCE),
        Rule::other("ListBudgets", FINANCE),
        // An override past the budget also needs a finance approver: the
        // handler checks, as the layer cannot see the request's body.
        Rule::other("RecordBudgetEntry", FINANCE),
        Rule::other("ListBudgetEntries", FINANCE),
    ],
};
