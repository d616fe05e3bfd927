//! Billing's validated types and rules, with no I/O: money arithmetic, payers,
//! invoice states, financial years and the budget rule.

pub mod budget;
pub mod money;
pub mod payer;
pub mod status;
pub mod text;

pub use budget::FinancialYear;
pub use money::{LineAmounts, line_amounts, vat_half_up};
pub use payer::Payer;
pub use status::InvoiceStatus;
