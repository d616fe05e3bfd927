//! What every medsec service shares: layered configuration, telemetry, the
//! database connection, transactions and migrations, the gRPC server shell,
//! identity and the audit trail, the error contract, the request reader,
//! the handler shape, idempotent creates, pagination and stored enums.

pub mod audit;
pub mod auth;
pub mod ceiling;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod handlers;
pub mod idempotency;
pub mod pagination;
pub mod peers;
pub mod request;
pub mod server;
pub mod shed;
pub mod stored;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod time;

pub use config::Settings;
pub use error::{ApiError, FieldViolations, PreconditionKind};
pub use request::Reader;
