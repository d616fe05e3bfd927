//! Billing's validated types and rules, with no I/O: money arithmetic and
//! bounds, payers (NHS care never invoiced), the invoice state machine,
//! payment terms and book dates, financial years and the budget rule, price
//! codes; and the stored spellings of billing's enums.

pub mod budget;
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
