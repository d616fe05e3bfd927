//! Validated types and rules of the patient's file; no I/O.

pub mod documents;
pub mod forms;
pub mod history;
pub mod nhs_number;
pub mod patient;
pub mod postcode;
pub mod specimens;

pub use nhs_number::NhsNumber;
pub use patient::{Address, GpPractice, PatientDetails, PatientPatch, Sex};
pub use postcode::{Postcode, PostcodeFilter};
