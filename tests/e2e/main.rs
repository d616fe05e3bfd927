//! The whole suite on a real server: health, reflection, single-service mode
//! and graceful shutdown, through standard gRPC clients, on SQLite and on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod day;
mod suite;
