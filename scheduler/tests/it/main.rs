//! Integration tests of medsec-scheduler, compiled into one binary.

mod brute_force;
mod cli;
mod common;
mod determinism;
mod json;
mod malformed;
