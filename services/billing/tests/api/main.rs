//! BillingService API tests: a real server on a random loopback port, a
//! fresh database per test, a real tonic client; every test runs once on
//! SQLite and once on PostgreSQL, but for the faults, which only PostgreSQL
//! can be made to raise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod budgets;
mod charges;
mod events;
mod faults;
mod helpers;
mod invariants;
mod invoices;
mod month;
