//! Reading what several of records' requests share: the patient a listing
//! names with its page, and the version or revision to read.

use medsec_platform::pagination::PageRequest;
use medsec_platform::{ApiError, Reader};
use uuid::Uuid;

/// The patient a listing of their record names, and the page it asks for.
pub(super) fn patient_page(
    patient_id: &str,
    page_size: i32,
    page_token: &str,
) -> Result<(Uuid, PageRequest), ApiError> {
    let mut r = Reader::new();
    let id = r.id("patient_id", patient_id);
    let page = r.page(page_size, page_token, patient_id);
    r.finish((id, page))
}

/// A version or revision to read: 0 means the latest.
pub(super) fn version(r: &mut Reader, field: &str, value: i32) -> Option<Option<i32>> {
    match value {
        0 => Some(None),
        v if v > 0 => Some(Some(v)),
        _ => {
            r.add(field, "must not be negative");
            None
        }
    }
}
