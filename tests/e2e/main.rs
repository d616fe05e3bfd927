//! The whole suite on a real server: health, reflection, single-service mode,
//! graceful shutdown, and who may call what, through standard gRPC clients,
//! on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod auth;
mod day;
mod faults;
mod fixtures;
mod harness;
mod history;
mod hostile;
mod malformed;
mod mtls;
mod suite;
