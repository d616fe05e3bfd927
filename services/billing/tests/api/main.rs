//! BillingService API tests: a real server on a random loopback port, a
//! fresh database per test, a real tonic client; every test runs once on
//! SQLite and once on PostgreSQL.

mod budgets;
mod charges;
mod helpers;
mod invariants;
mod invoices;
mod month;
