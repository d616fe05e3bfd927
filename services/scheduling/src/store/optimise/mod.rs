//! Optimisation runs over the tables: model-v1 instances built from waiting
//! referrals and free slots ([`instance`]), the one-run-per-specialty lock
//! ([`lock`]), proposals and their allocations ([`proposals`]), committing
//! them through the booking path ([`mod@commit`]), BookBestSlot's booking
//! ([`best_slot`]), offers' holds ([`holds`]) and rebooking displaced
//! appointments ([`rebook`]). The model itself runs in `domain::allocation`.

pub mod best_slot;
pub mod commit;
pub mod holds;
pub mod instance;
pub mod lock;
pub mod proposals;
pub mod rebook;

pub use commit::{Committed, book_allocations, commit};
pub use holds::hold;
pub use instance::{Built, Scope};
pub use lock::RunLock;
pub use rebook::apply_moves;

use medsec_platform::ApiError;

/// Why a booking the optimiser attempted could not be made, for the
/// client; `None` for a fault on our side or a passing one (a lost race, a
/// database that cannot serve for the moment), which fails the attempt
/// instead and is never stored as a refusal.
fn refusal(error: &ApiError) -> Option<String> {
    match error {
        ApiError::Internal(_)
        | ApiError::Unavailable(_)
        | ApiError::Aborted(_)
        | ApiError::ResourceExhausted(_) => None,
        ApiError::InvalidArgument(violations) => Some(
            violations
                .iter()
                .map(|(field, why)| format!("{field} {why}"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => Some(other.to_string()),
    }
}
