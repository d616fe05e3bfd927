//! Billing's validated types and rules, with no I/O: money arithmetic and
//! bounds, payers (NHS care never invoiced), the invoice state machine,
//! payment terms and book dates, financial years and the budget rule, price
//! codes; and the stored spellings of billing's enums.

pub mod budget;
pub mod charge_rule;
pub mod invoice;
pub mod money;
pub mod payer;
pub mod price;
pub mod status;

pub use budget::{EntryKind, FinancialYear};
pub use invoice::{AgedDebt, PaymentMethod, PaymentTerms};
pub use money::{LineAmounts, line_amounts, vat_half_up};
pub use payer::{Payer, PayerKind};
pub use status::InvoiceStatus;

/// What the rules' unit tests share.
#[cfg(test)]
mod testing {
    use medsec_platform::{ApiError, Reader};

    /// A civil date written `YYYY-MM-DD`.
    pub(crate) fn date(text: &str) -> chrono::NaiveDate {
        text.parse().unwrap()
    }

    /// The fields `r` found bad, in order.
    pub(crate) fn bad_fields(r: Reader) -> Vec<String> {
        match r.finish(()) {
            Err(ApiError::InvalidArgument(violations)) => {
                violations.fields().map(str::to_owned).collect()
            }
            other => panic!("expected bad fields, got {other:?}"),
        }
    }
}
