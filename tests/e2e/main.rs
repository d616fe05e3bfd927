//! The whole suite on a real server: health, reflection, single-service mode
//! and graceful shutdown, through standard gRPC clients, on SQLite and on
//! PostgreSQL.

mod day;
mod suite;
