//! Validated types and rules of the patient's file; no I/O.

pub mod nhs_number;
pub mod patient;
pub mod postcode;

pub use nhs_number::NhsNumber;
pub use patient::{Address, GpPractice, PatientDetails, PatientPatch, Sex};
pub use postcode::Postcode;
