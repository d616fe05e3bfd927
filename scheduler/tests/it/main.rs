//! Integration tests of medsec-scheduler, compiled into one binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod brute_force;
mod cli;
mod common;
mod dense;
mod determinism;
mod json;
mod malformed;
mod time_limit;
