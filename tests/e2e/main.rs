//! The whole suite on a real server: health, reflection, single-service mode,
//! graceful shutdown, who may call what and the audit trail of it, through
//! standard gRPC clients, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod audit;
mod auth;
mod day;
mod descriptors;
mod dice;
mod events;
mod faults;
mod fixtures;
mod fuzz;
mod harness;
mod history;
mod hostile;
mod malformed;
mod mtls;
mod suite;
