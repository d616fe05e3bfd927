//! What every medsec service shares: layered configuration, telemetry, the
//! database connection and migrations, the gRPC server shell, the error
//! contract, idempotency keys and pagination tokens.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod pagination;
pub mod server;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod time;

pub use config::Settings;
pub use error::{ApiError, FieldViolations};
