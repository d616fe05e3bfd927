//! SchedulingService API tests: a real server on a random loopback port, a
//! fresh database per test, a real tonic client; every test runs once on
//! SQLite and once on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod appointments;
mod diary;
mod e2e;
mod enquiries;
mod faults;
mod helpers;
mod optimise;
mod referrals;
