//! SchedulingService API tests: a real server on a random loopback port, a
//! fresh database per test, a real tonic client; every test runs once on
//! SQLite and once on PostgreSQL.

mod appointments;
mod diary;
mod e2e;
mod enquiries;
mod helpers;
mod optimise;
mod referrals;
