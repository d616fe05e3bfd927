//! What many handlers read the same way: the one id of a Get or a mark, and
//! the page of a List.

use std::fmt::Debug;

use medsec_platform::pagination::PageRequest;
use medsec_platform::{ApiError, Reader};
use uuid::Uuid;

/// The one id a request names in `id`.
pub(super) fn one_id(id: &str) -> Result<Uuid, ApiError> {
    let mut r = Reader::new();
    let id = r.id("id", id);
    r.finish(id)
}

/// The page a List request of `list` asks for, once its `filters` are read
/// into `r`: a token is good only for the same list with the same filters.
/// Finishes the reading, so every bad field is named at once.
pub(super) fn page(
    mut r: Reader,
    list: &str,
    filters: &impl Debug,
    page_size: i32,
    page_token: &str,
) -> Result<PageRequest, ApiError> {
    let page = r.page(page_size, page_token, &format!("{list};{filters:?}"));
    r.finish(page)
}
