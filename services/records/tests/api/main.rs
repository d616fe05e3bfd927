//! RecordsService API tests: a real server on a random loopback port, a
//! fresh database per test, a real tonic client; every test runs once on
//! SQLite and once on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod audit;
mod documents;
mod events;
mod faults;
mod forms;
mod helpers;
mod history;
mod patients;
mod specimens;
